//! The `routes!` macro of Switchyard. Use it through `proxy-runtime`, which re-exports it
//! and documents the language.
//!
//! The macro runs in four phases: `ast` parses, `check` applies every semantic rule and
//! collects all errors, `lower` plans the decision tree, `expand` generates code.

mod ast;
mod check;
mod expand;
mod lower;
mod model;

use proc_macro::TokenStream;

/// Declares a routing table. See the `proxy_runtime` crate for the language.
#[proc_macro]
pub fn routes(input: TokenStream) -> TokenStream {
    let table = syn::parse_macro_input!(input as ast::RouteTable);
    let fallback = expand::fallback(&table);
    match check::check(table) {
        Ok(model) => expand::routes(&model).into(),
        Err(e) => {
            let errors = e.to_compile_error();
            quote::quote!(#errors #fallback).into()
        }
    }
}
