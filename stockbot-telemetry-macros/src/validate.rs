//! Validation: the schema's trading conventions and the runtime's naming rules, checked at
//! compile time, with errors on the user's tokens.

use stockbot_telemetry_conventions::{self as conventions, Cardinality, MetricKind};
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, ReturnType};

use crate::parse::Args;

/// What the expansion needs, all checked.
pub(crate) struct Checked {
    pub(crate) operation: String,
    pub(crate) span_name: String,
    pub(crate) level: &'static str,
    pub(crate) metric: String,
    /// Span fields: attribute key and expression (given ones, then captured parameters).
    pub(crate) fields: Vec<(Ident, syn::Expr)>,
    /// Metric labels among the fields (by key).
    pub(crate) labels: Vec<Ident>,
    /// The SLO the function is tied to.
    pub(crate) slo: Option<String>,
}

const LEVELS: [(&str, &str); 5] = [
    ("trace", "TRACE"),
    ("debug", "DEBUG"),
    ("info", "INFO"),
    ("warn", "WARN"),
    ("error", "ERROR"),
];

fn unknown_key(key: &Ident) -> syn::Error {
    let name = key.to_string();
    let hint = match conventions::suggest(&name) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "`{name}` is not a trading attribute of the schema{hint}; options are operation, name, level, metric, slo, skip(..), labels(..), err, ret, audit, crate"
        ),
    )
}

/// Attribute names the macro sets itself.
const RESERVED: [(&str, &str); 4] = [
    ("operation", "it is set by `operation = \"...\"`"),
    ("outcome", "the macro records the outcome itself"),
    ("error_kind", "the macro records the error kind itself"),
    ("audit", "use the `audit` flag"),
];

/// Whether a type contains `impl Trait` anywhere (an opaque return type).
pub(crate) fn has_impl_trait(tokens: &proc_macro2::TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Group(g) => has_impl_trait(&g.stream()),
        _ => false,
    })
}

pub(crate) fn check(args: &Args, func: &ItemFn) -> syn::Result<Checked> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let fn_name = func.sig.ident.to_string();
    let operation = args
        .operation
        .as_ref()
        .map_or_else(|| fn_name.clone(), |o| o.value());
    if let Some(o) = &args.operation
        && (o.value().is_empty()
            || !o
                .value()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        push(syn::Error::new_spanned(
            o,
            "`operation` must be a non-empty snake_case name (it is a metric label value)",
        ));
    }
    let span_name = args
        .name
        .as_ref()
        .map_or_else(|| operation.clone(), |n| n.value());
    let level = match &args.level {
        None => "INFO",
        Some(l) => match LEVELS
            .iter()
            .find(|(k, _)| *k == l.value().to_ascii_lowercase())
        {
            Some((_, v)) => v,
            None => {
                push(syn::Error::new_spanned(
                    l,
                    "`level` must be one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"",
                ));
                "INFO"
            }
        },
    };
    let metric = args
        .metric
        .as_ref()
        .map_or_else(|| "stockbot_trade".to_owned(), |m| m.value());
    if let Some(m) = &args.metric {
        for (name, kind) in [
            (format!("{metric}_calls_total"), MetricKind::Counter),
            (format!("{metric}_duration_seconds"), MetricKind::Histogram),
        ] {
            if let Err(e) = conventions::validate_metric_name(&name, kind, "") {
                push(syn::Error::new_spanned(
                    m,
                    format!("bad metric name `{name}`: {e}"),
                ));
                break;
            }
        }
    }

    let slo = args.slo.as_ref().map(LitStr::value);
    if let (Some(lit), Some(name)) = (&args.slo, &slo) {
        let shape = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !shape {
            push(syn::Error::new_spanned(
                lit,
                "`slo` names a declared SLO: [a-z][a-z0-9_]* (e.g. `slo = \"order_acceptance\"`)",
            ));
        }
    }
    if let Some(c) = &func.sig.constness {
        push(syn::Error::new_spanned(
            c,
            "`#[instrument_trade]` cannot instrument a `const fn` (spans and metrics are not const)",
        ));
    }
    if let ReturnType::Type(_, ty) = &func.sig.output
        && matches!(**ty, syn::Type::Never(_))
    {
        push(syn::Error::new_spanned(
            ty,
            "`#[instrument_trade]` needs a function that returns: this one returns `!`",
        ));
    }
    // Given attributes must be trading attributes of the schema, and not ones the macro sets.
    let mut fields = Vec::new();
    for (key, expr) in &args.fields {
        let name = key.to_string();
        if let Some((_, why)) = RESERVED.iter().find(|(r, _)| *r == name) {
            push(syn::Error::new(
                key.span(),
                format!("`{name}` cannot be given as an attribute: {why}"),
            ));
        } else if conventions::lookup(&name).is_none() {
            push(unknown_key(key));
        }
        fields.push((key.clone(), expr.clone()));
    }
    // Parameters named like trading attributes are recorded too, unless skipped.
    let params: Vec<Ident> = func
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) => Some(p.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    for s in &args.skip {
        if !params.contains(s) {
            push(syn::Error::new(
                s.span(),
                format!("`skip({s})`: `{s}` is not a parameter of `{fn_name}`"),
            ));
        }
    }
    for p in &params {
        let name = p.to_string();
        if conventions::lookup(&name).is_some()
            && !RESERVED.iter().any(|(r, _)| *r == name)
            && !args.skip.contains(p)
            && !fields.iter().any(|(k, _)| k == p)
        {
            fields.push((p.clone(), syn::parse_quote!(#p)));
        }
    }

    // Labels: explicit ones must be attributes and never high-cardinality; by default every
    // low-cardinality attribute.
    let cardinality = |k: &Ident| conventions::label_cardinality(&k.to_string());
    let labels = match &args.labels {
        Some(list) => {
            for l in list {
                if !fields.iter().any(|(k, _)| k == l) {
                    push(syn::Error::new(
                        l.span(),
                        format!(
                            "`labels({l})`: `{l}` is not an attribute of this function (give it as `{l} = expression`)"
                        ),
                    ));
                } else if cardinality(l) == Some(Cardinality::High) {
                    push(syn::Error::new(
                        l.span(),
                        format!(
                            "`{l}` is high-cardinality (ids, accounts, prices): it goes on the span and in logs, never on a metric label"
                        ),
                    ));
                }
            }
            list.clone()
        }
        None => fields
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| cardinality(k) == Some(Cardinality::Low))
            .collect(),
    };

    if let Some(err) = args.err {
        let is_result = match &func.sig.output {
            ReturnType::Type(_, ty) => match &**ty {
                syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
                _ => false,
            },
            ReturnType::Default => false,
        };
        if !is_result {
            push(syn::Error::new(
                err,
                "`err` records the error of a function returning `Result`; this one does not",
            ));
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(Checked {
            operation,
            span_name,
            level,
            metric,
            fields,
            labels,
            slo,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(attr: proc_macro2::TokenStream, func: proc_macro2::TokenStream) -> String {
        let args: Args = syn::parse2(attr).unwrap();
        let func: ItemFn = syn::parse2(func).unwrap();
        match check(&args, &func) {
            Ok(_) => String::from("no error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let e = error_of(
            quote::quote!(cl_ordid = o.id),
            quote::quote!(
                fn f(o: &O) {}
            ),
        );
        assert!(
            e.contains("`cl_ordid` is not a trading attribute")
                && e.contains("did you mean `cl_ord_id`"),
            "{e}"
        );
    }

    #[test]
    fn high_cardinality_labels_are_refused() {
        let e = error_of(
            quote::quote!(cl_ord_id = o.id, labels(cl_ord_id)),
            quote::quote!(
                fn f(o: &O) {}
            ),
        );
        assert!(e.contains("high-cardinality"), "{e}");
    }

    #[test]
    fn bad_options_are_named() {
        for (attr, says) in [
            (quote::quote!(level = "loud"), "`level` must be one of"),
            (quote::quote!(metric = "Bad-Name"), "bad metric name"),
            (
                quote::quote!(err),
                "`err` records the error of a function returning `Result`",
            ),
            (quote::quote!(skip(nope)), "`nope` is not a parameter"),
            (
                quote::quote!(labels(venue)),
                "`venue` is not an attribute of this function",
            ),
        ] {
            let e = error_of(
                attr,
                quote::quote!(
                    fn f(o: &O) -> u8 {
                        1
                    }
                ),
            );
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn low_cardinality_attributes_and_parameters_become_labels() {
        let args: Args =
            syn::parse2(quote::quote!(strategy = self.name, symbol = o.symbol)).unwrap();
        let func: ItemFn = syn::parse2(quote::quote!(
            fn f(venue: &str, price: f64) {}
        ))
        .unwrap();
        let c = check(&args, &func).unwrap();
        let labels: Vec<String> = c.labels.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            ["strategy", "venue"],
            "symbol is medium, price high"
        );
        let fields: Vec<String> = c.fields.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(fields, ["strategy", "symbol", "venue", "price"]);
        assert_eq!((c.operation.as_str(), c.level), ("f", "INFO"));
    }
}
