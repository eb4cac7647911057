use proc_macro::TokenStream; #[proc_macro] pub fn routes(t: TokenStream)->TokenStream{t}
