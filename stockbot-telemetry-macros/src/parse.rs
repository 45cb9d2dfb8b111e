//! Parsing: the attribute's arguments into [`Args`], keeping every token's span for errors.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, parenthesized};

/// The arguments of `#[instrument_trade(...)]`, as written.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) operation: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) level: Option<LitStr>,
    pub(crate) metric: Option<LitStr>,
    pub(crate) slo: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) labels: Option<Vec<Ident>>,
    pub(crate) err: Option<Span>,
    pub(crate) ret: Option<Span>,
    pub(crate) audit: Option<Span>,
    /// Trading attributes: `key = expression`.
    pub(crate) fields: Vec<(Ident, Expr)>,
    /// Every option key seen, to refuse duplicates.
    pub(crate) seen: Vec<Ident>,
}

enum Arg {
    Crate(Path),
    Value(Ident, Expr),
    List(Ident, Vec<Ident>),
    Flag(Ident),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Token![crate]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            return Ok(Arg::Crate(input.parse()?));
        }
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            return Ok(Arg::Value(key, input.parse()?));
        }
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            let items = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
            return Ok(Arg::List(key, items.into_iter().collect()));
        }
        Ok(Arg::Flag(key))
    }
}

fn string(key: &Ident, value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, e.g. `{key} = \"...\"`"),
        )),
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        for arg in Punctuated::<Arg, Token![,]>::parse_terminated(input)? {
            let key = match &arg {
                Arg::Crate(p) => Ident::new("crate", syn::spanned::Spanned::span(p)),
                Arg::Value(k, _) | Arg::List(k, _) | Arg::Flag(k) => k.clone(),
            };
            if let Some(first) = args.seen.iter().find(|s| **s == key) {
                let _ = first;
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{key}` is given twice"),
                ));
            }
            args.seen.push(key.clone());
            match arg {
                Arg::Crate(path) => args.krate = Some(path),
                Arg::Value(k, v) => match k.to_string().as_str() {
                    "operation" => args.operation = Some(string(&k, v)?),
                    "name" => args.name = Some(string(&k, v)?),
                    "level" => args.level = Some(string(&k, v)?),
                    "metric" => args.metric = Some(string(&k, v)?),
                    "slo" => args.slo = Some(string(&k, v)?),
                    _ => args.fields.push((k, v)),
                },
                Arg::List(k, items) => match k.to_string().as_str() {
                    "skip" => args.skip = items,
                    "labels" => args.labels = Some(items),
                    _ => {
                        return Err(syn::Error::new(
                            k.span(),
                            format!(
                                "unknown option `{k}(...)`: expected `skip(...)` or `labels(...)`"
                            ),
                        ));
                    }
                },
                Arg::Flag(k) => match k.to_string().as_str() {
                    "err" => args.err = Some(k.span()),
                    "ret" => args.ret = Some(k.span()),
                    "audit" => args.audit = Some(k.span()),
                    _ => {
                        return Err(syn::Error::new(
                            k.span(),
                            format!(
                                "`{k}` needs a value (`{k} = expression`); the flags are `err`, `ret` and `audit`"
                            ),
                        ));
                    }
                },
            }
        }
        Ok(args)
    }
}
