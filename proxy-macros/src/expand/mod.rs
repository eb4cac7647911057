//! Code generation from a checked and lowered table. Runtime items are reached only
//! through `::proxy_runtime::__private`, std items through `::core`/`::std`, and locals are
//! prefixed `__sy_`, so nothing in the user's scope can change what this expands to.
//!
//! `spec` writes the declarations as data, `decide` the decision function; this file the
//! public items, which a broken table gets too (`fallback`).

mod decide;
mod spec;

use crate::ast::DeclaredNames;
use crate::lower::Lowered;
use crate::model::{variant_name, Model};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, Ident};

/// A variant of `GatewayRoute` or `GatewayCluster`.
struct Variant {
    ident: Ident,
    /// The name as written in the table.
    name: String,
    /// Its doc attributes.
    docs: TokenStream,
}

/// What the public items of a table are built from.
struct Surface<'a> {
    proxy: &'a Ident,
    proxy_attrs: &'a [Attribute],
    /// The hooks type of `proxy Gateway(Auth);`.
    hooks: Option<&'a syn::Path>,
    routes: Vec<Variant>,
    clusters: Vec<Variant>,
    /// The `let` names, with their doc attributes.
    preds: Vec<(Ident, TokenStream)>,
}

/// The generated type names: `Gateway` → `GatewayRoute`, `GatewayCluster`,
/// `GatewayPredicates`, `GatewayCtx`.
struct Names {
    route_enum: Ident,
    cluster_enum: Ident,
    preds_ty: Ident,
    ctx: Ident,
}

impl Names {
    fn of(proxy: &Ident) -> Self {
        Names {
            route_enum: format_ident!("{}Route", proxy),
            cluster_enum: format_ident!("{}Cluster", proxy),
            preds_ty: format_ident!("{}Predicates", proxy),
            ctx: format_ident!("{}Ctx", proxy),
        }
    }
}

/// The whole expansion of a valid table.
pub fn routes(m: &Model, l: &Lowered) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let names = Names::of(&m.proxy);
    let surface = Surface {
        proxy: &m.proxy,
        proxy_attrs: &m.proxy_attrs,
        hooks: m.hooks.as_ref(),
        routes: m
            .routes
            .iter()
            .map(|r| {
                let attrs = &r.attrs;
                let doc = format!(
                    " `route {}: {} => {};`",
                    r.name, r.matcher_text, r.target_text
                );
                Variant {
                    ident: r.variant.clone(),
                    name: r.name.to_string(),
                    docs: quote!(#(#attrs)* #[doc = ""] #[doc = #doc]),
                }
            })
            .collect(),
        clusters: m
            .clusters
            .iter()
            .map(|c| {
                let attrs = &c.attrs;
                Variant {
                    ident: c.variant.clone(),
                    name: c.name.to_string(),
                    docs: quote!(#(#attrs)*),
                }
            })
            .collect(),
        preds: m
            .preds
            .iter()
            .map(|p| {
                let attrs = &p.attrs;
                (p.name.clone(), quote!(#(#attrs)*))
            })
            .collect(),
    };
    let Names {
        route_enum,
        cluster_enum,
        preds_ty,
        ..
    } = &names;
    let statics = Statics {
        clusters: m.clusters.iter().map(spec::cluster_spec).collect(),
        routes: spec::route_specs(m).collect(),
        splits: spec::split_specs(m).collect(),
        responses: spec::response_specs(m).collect(),
        paths: spec::path_policy(m.paths),
        redirects: spec::redirect_specs(m).collect(),
        forwarding: spec::forwarding(m),
        predicates: spec::predicates(m),
        listener_port: spec::listener_port(m),
    };
    let decide = decide::decide_body(m, l, route_enum, cluster_enum, preds_ty);
    let decide_view = quote! {
        // The generated tree is deliberately repetitive (one `if` per rule, nested
        // `match`es per trie level), which clippy's style lints would flag.
        #[allow(unused_variables, unreachable_code, clippy::all)]
        #[inline]
        fn decide_view(__sy_v: &#pv::RequestView<'_>) -> #pv::Decision<Self> {
            #decide
        }
    };
    surface_and_table(&surface, &names, statics, decide_view)
}

/// The `Table` data of a table, as the items of each `static` slice.
#[derive(Default)]
struct Statics {
    clusters: Vec<TokenStream>,
    routes: Vec<TokenStream>,
    splits: Vec<TokenStream>,
    responses: Vec<TokenStream>,
    /// `const PATHS` when the table sets `ambiguous_paths` to other than the default.
    paths: TokenStream,
    redirects: Vec<TokenStream>,
    /// `const TRUSTED_PROXIES` and `const FORWARDING`, when not the defaults.
    forwarding: TokenStream,
    /// `const PREDICATES`, when the table has `let`s.
    predicates: TokenStream,
    /// `const LISTENER_PORT`, when a rule tests `port(..)`.
    listener_port: TokenStream,
}

/// The public items and the `Table` impl, whose `decide_view` method is given whole: the
/// one expansion of a valid table and of a broken one's fallback.
fn surface_and_table(
    s: &Surface,
    names: &Names,
    statics: Statics,
    decide_view: TokenStream,
) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let public = public_items(s, names);
    let proxy = s.proxy;
    let name = proxy.to_string();
    let Names {
        route_enum,
        cluster_enum,
        preds_ty,
        ..
    } = names;
    let Statics {
        clusters,
        routes,
        splits,
        responses,
        paths,
        redirects,
        forwarding,
        predicates,
        listener_port,
    } = statics;
    let hooks = match s.hooks {
        // Spanned at the user's type, so "`Auth` does not implement `Hooks<Gateway>`"
        // points there.
        Some(h) => quote::quote_spanned!(syn::spanned::Spanned::span(h)=> #h),
        None => quote!(#pv::NoHooks),
    };
    quote! {
        #public

        impl #pv::Table for #proxy {
            type RouteId = #route_enum;
            type ClusterId = #cluster_enum;
            type Predicates = #preds_ty;
            type Hooks = #hooks;

            const NAME: &'static str = #name;
            const CLUSTERS: &'static [#pv::ClusterSpec] = &[#(#clusters),*];
            const ROUTES: &'static [#pv::RouteSpec] = &[#(#routes),*];
            const SPLITS: &'static [#pv::SplitSpec] = &[#(#splits),*];
            const RESPONSES: &'static [#pv::Response] = &[#(#responses),*];
            const REDIRECTS: &'static [#pv::RedirectSpec] = &[#(#redirects),*];
            #paths
            #forwarding
            #predicates
            #listener_port

            #decide_view
        }
    }
}

/// What a table with errors expands to beside its `compile_error!`s: the same public
/// items, named from whatever was declared, and a `Table` that routes nothing, so code that
/// uses the table (`Gateway::builder()`, `GatewayRoute::ALL`, `GatewayCtx`) reports the
/// table's errors and nothing else. Without `proxy NAME;` there is nothing to name.
pub fn fallback(declared: &DeclaredNames) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let Some((proxy, proxy_attrs)) = &declared.proxy else {
        return TokenStream::new();
    };
    // Each name once, and only those that make a variant.
    fn variants(names: &[Ident]) -> Vec<Variant> {
        let mut out: Vec<Variant> = Vec::new();
        for n in names {
            if let Some(ident) = variant_name(n) {
                if !out.iter().any(|v| v.ident == ident) {
                    out.push(Variant {
                        ident,
                        name: n.to_string(),
                        docs: TokenStream::new(),
                    });
                }
            }
        }
        out
    }
    let mut preds: Vec<(Ident, TokenStream)> = Vec::new();
    for l in &declared.lets {
        if !preds.iter().any(|(n, _)| n == l) {
            preds.push((l.clone(), TokenStream::new()));
        }
    }
    let surface = Surface {
        proxy,
        proxy_attrs,
        hooks: declared.hooks.as_ref(),
        routes: variants(&declared.routes),
        clusters: variants(&declared.clusters),
        preds,
    };
    let names = Names::of(proxy);
    let decide_view = quote! {
        fn decide_view(_: &#pv::RequestView<'_>) -> #pv::Decision<Self> {
            #pv::Decision {
                route: ::core::option::Option::None,
                target: #pv::Target::NoRoute,
                predicates: ::core::default::Default::default(),
            }
        }
    };
    surface_and_table(&surface, &names, Statics::default(), decide_view)
}

/// The items a user names: the proxy type with `serve`/`builder`/`decide`, the two enums
/// (inherent `ALL` and `name()`, and `Id`), the predicates struct and the context alias.
fn public_items(s: &Surface, names: &Names) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let proxy = s.proxy;
    let proxy_attrs = s.proxy_attrs;
    let Names {
        route_enum,
        cluster_enum,
        preds_ty,
        ctx,
    } = names;
    let routes = id_enum(
        route_enum,
        &format!("The rules of [`{proxy}`], in the order they are tried."),
        "Every rule, in order.",
        "The rule's name as written in the table (also its log and metric label).",
        &s.routes,
    );
    let clusters = id_enum(
        cluster_enum,
        &format!("The upstream clusters of [`{proxy}`]."),
        "Every cluster, in declaration order.",
        "The cluster's name as written in the table.",
        &s.clusters,
    );
    let pred_fields = s.preds.iter().map(|(n, _)| n);
    let pred_docs = s.preds.iter().map(|(_, d)| d);
    let preds_doc = format!("The named predicates of [`{proxy}`] for one request.");
    let ctx_doc = format!(
        "The per-request context of [`{proxy}`]: the route, cluster and backend chosen, the \
         connection attempts, the arrival time and the [`{preds_ty}`] of the request."
    );
    quote! {
        #(#proxy_attrs)*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #proxy;

        #routes
        #clusters

        #[doc = #preds_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        // Fields keep the `let` names as written; user code may read them or not.
        #[allow(non_snake_case, dead_code)]
        pub struct #preds_ty { #(#pred_docs pub #pred_fields: bool,)* }

        #[doc = #ctx_doc]
        #[allow(dead_code)]
        pub type #ctx = #pv::Ctx<#proxy>;

        #[allow(dead_code)]
        impl #proxy {
            /// Parse the command line and run the proxy until SIGTERM, with the default
            /// value of the table's hooks.
            // `for<'__sy>` keeps the bound from being checked unless `serve` is called:
            // a hooks type without `Default` is started with `serve_with`.
            pub fn serve()
            where
                for<'__sy> <Self as #pv::Table>::Hooks: ::core::default::Default,
            {
                #pv::serve::<Self>()
            }

            /// Parse the command line and run the proxy until SIGTERM, with these hooks.
            pub fn serve_with(hooks: <Self as #pv::Table>::Hooks) {
                #pv::serve_with::<Self>(hooks)
            }

            /// A proxy on a background thread, for tests and embedding, with the default
            /// value of the table's hooks.
            pub fn builder() -> #pv::Builder<Self>
            where
                for<'__sy> <Self as #pv::Table>::Hooks: ::core::default::Default,
            {
                #pv::Builder::with_hooks(::core::default::Default::default())
            }

            /// A proxy on a background thread, for tests and embedding, with these hooks.
            pub fn builder_with(hooks: <Self as #pv::Table>::Hooks) -> #pv::Builder<Self> {
                #pv::Builder::with_hooks(hooks)
            }

            /// Which rule and target a request head gets. Allocates nothing.
            pub fn decide(
                req: &#pv::RequestHeader,
                client: ::core::option::Option<#pv::IpAddr>,
            ) -> ::core::result::Result<#pv::Decision<Self>, #pv::BadRequest> {
                <Self as #pv::Table>::decide(req, client)
            }

            /// [`decide`](Self::decide) for a request that came in on listener `arrival`
            /// (what `tls` and `port(..)` rules test). Allocates nothing.
            pub fn decide_at(
                req: &#pv::RequestHeader,
                client: ::core::option::Option<#pv::IpAddr>,
                arrival: #pv::Arrival,
            ) -> ::core::result::Result<#pv::Decision<Self>, #pv::BadRequest> {
                <Self as #pv::Table>::decide_at(req, client, arrival)
            }
        }
    }
}

/// `pub enum GatewayRoute { .. }` with inherent `ALL` and `name()`, and its `Id` impl.
fn id_enum(
    ident: &Ident,
    doc: &str,
    all_doc: &str,
    name_doc: &str,
    variants: &[Variant],
) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let n = variants.len();
    let vs: Vec<&Ident> = variants.iter().map(|v| &v.ident).collect();
    let names = variants.iter().map(|v| &v.name);
    let docs = variants.iter().map(|v| &v.docs);
    // `self as usize` is the position in `ALL`; an enum without variants has none.
    let index = if variants.is_empty() {
        quote!(match self {})
    } else {
        quote!(self as usize)
    };
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        // Variants are the table's names in CamelCase: `api_v1`, `api_v2` share a prefix.
        #[allow(clippy::enum_variant_names, clippy::upper_case_acronyms)]
        pub enum #ident { #(#docs #vs,)* }

        impl #ident {
            #[doc = #all_doc]
            pub const ALL: [Self; #n] = [#(Self::#vs),*];
            #[doc = #name_doc]
            pub const fn name(self) -> &'static str {
                match self { #(Self::#vs => #names,)* }
            }
        }

        impl #pv::Id for #ident {
            const ALL: &'static [Self] = &Self::ALL;
            fn name(self) -> &'static str {
                Self::name(self)
            }
            fn index(self) -> usize {
                #index
            }
        }
    }
}
