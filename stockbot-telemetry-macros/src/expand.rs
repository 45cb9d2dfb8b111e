//! Expansion: the function with its span, call guard and outcome, using absolute paths into
//! the core crate's `__private` module.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, ReturnType};

use crate::parse::Args;
use crate::validate::Checked;

pub(crate) fn expand(args: &Args, checked: &Checked, func: ItemFn) -> TokenStream {
    let krate = match &args.krate {
        Some(p) => quote!(#p),
        None => quote!(::stockbot_telemetry),
    };
    let p = quote!(#krate::__private);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let Checked {
        operation,
        span_name,
        level,
        metric,
        fields,
        labels,
        slo,
    } = checked;
    let level = format_ident!("{}", level);
    let (calls, errors, duration) = (
        format!("{metric}_calls_total"),
        format!("{metric}_errors_total"),
        format!("{metric}_duration_seconds"),
    );
    // Each attribute expression is evaluated exactly once, before the body, into a binding
    // that the span and the labels share.
    let bindings: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("__stockbot_f{}", i))
        .collect();
    let field_exprs = fields.iter().map(|(_, v)| v);
    let field_names = fields.iter().map(|(k, _)| k);
    let audit = args.audit.map(|_| quote!(audit = true,));
    let label_names: Vec<String> = labels.iter().map(ToString::to_string).collect();
    let label_values = labels.iter().map(|l| {
        let i = fields
            .iter()
            .position(|(k, _)| k == l)
            .expect("validated: every label is a field");
        let binding = &bindings[i];
        quote!(#binding as &dyn ::std::fmt::Display)
    });
    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let opaque = crate::validate::has_impl_trait(&ret_ty);
    let annotated = (!opaque).then(|| quote!(: #ret_ty));
    // With `err`, the error's `Display` goes into the error record.
    let message = match args.err {
        Some(_) => quote! {
            match &__stockbot_out {
                ::std::result::Result::Err(__stockbot_e) => ::std::option::Option::Some(__stockbot_e as &dyn ::std::fmt::Display),
                ::std::result::Result::Ok(_) => ::std::option::Option::None,
            }
        },
        None => quote!(::std::option::Option::None),
    };
    let call = if sig.asyncness.is_some() {
        quote! {
            #p::tracing::Instrument::instrument(async move #block, ::std::clone::Clone::clone(&__stockbot_span)).await
        }
    } else {
        let closure_ret = (!opaque).then(|| quote!(-> #ret_ty));
        // The outcome is recorded while the span is still entered.
        quote! {{
            let __stockbot_entered = __stockbot_span.enter();
            #[allow(clippy::redundant_closure_call)]
            let __stockbot_out #annotated = (move || #closure_ret #block)();
            #[allow(clippy::needless_borrow)]
            {
                #[allow(unused_imports)]
                use #p::{KindOk as _, KindViaResult as _, KindViaTrait as _};
                __stockbot_guard.finish_entered((&&&#p::Wrap(&__stockbot_out)).__stockbot_outcome(), #message);
            }
            __stockbot_out
        }}
    };
    let finish_after = sig.asyncness.is_some().then(|| {
        quote! {
            #[allow(clippy::needless_borrow)]
            {
                #[allow(unused_imports)]
                use #p::{KindOk as _, KindViaResult as _, KindViaTrait as _};
                __stockbot_guard.finish((&&&#p::Wrap(&__stockbot_out)).__stockbot_outcome(), #message);
            }
        }
    });
    let ret_event = args.ret.map(|_| {
        quote! {
            #p::tracing::event!(parent: &__stockbot_span, #p::tracing::Level::#level, r#return = ?&__stockbot_out);
        }
    });
    // With no run-time labels, every metric key is built once, at compile time.
    let keys = if labels.is_empty() {
        let outcomes = ["ok", "error", "panic", "cancelled"];
        let slo_label = slo
            .as_ref()
            .map(|s| quote!(#p::metrics::Label::from_static_parts("slo", #s),));
        let width = 2 + usize::from(slo.is_some());
        let label_sets = outcomes.iter().map(|o| {
            quote!([
                #p::metrics::Label::from_static_parts("operation", #operation),
                #slo_label
                #p::metrics::Label::from_static_parts("outcome", #o),
            ])
        });
        let idx = 0..outcomes.len();
        let idx2 = idx.clone();
        quote! {
            static __STOCKBOT_LABELS: [[#p::metrics::Label; #width]; 4] = [#(#label_sets),*];
            static __STOCKBOT_KEYS: #p::Keys = #p::Keys {
                calls: [#(#p::metrics::Key::from_static_parts(#calls, &__STOCKBOT_LABELS[#idx])),*],
                duration: [#(#p::metrics::Key::from_static_parts(#duration, &__STOCKBOT_LABELS[#idx2])),*],
            };
        }
    } else {
        quote!()
    };
    let keys_ref = if labels.is_empty() {
        quote!(::std::option::Option::Some(&__STOCKBOT_KEYS))
    } else {
        quote!(::std::option::Option::None)
    };
    let slo_ref = match slo {
        Some(s) => quote!(::std::option::Option::Some(#s)),
        None => quote!(::std::option::Option::None),
    };
    // Registered when the program is linked: `init` refuses SLO names nobody declared.
    let tie = slo.as_ref().map(|s| {
        let function = format!("::{}", sig.ident);
        quote! {
            #p::inventory::submit! {
                #p::SloTie {
                    slo: #s,
                    function: ::std::concat!(::std::module_path!(), #function),
                    file: ::std::file!(),
                    line: ::std::line!(),
                }
            }
        }
    });
    quote! {
        #(#attrs)*
        #vis #sig {
            #keys
            #tie
            static __STOCKBOT_SITE: #p::Site = #p::Site::new(
                #operation,
                [#calls, #errors, #duration],
                #keys_ref,
                &[#(#label_names),*],
                #slo_ref,
            );
            #(let #bindings = &(#field_exprs);)*
            let __stockbot_span = #p::tracing::span!(
                target: ::std::module_path!(),
                #p::tracing::Level::#level,
                #span_name,
                operation = #operation,
                #(#field_names = #p::tracing::field::display(#bindings),)*
                #audit
                error.kind = #p::tracing::field::Empty,
            );
            let __stockbot_guard = #p::CallGuard::start(
                &__STOCKBOT_SITE,
                &__stockbot_span,
                &[#(#label_values),*],
            );
            let __stockbot_out #annotated = #call;
            #ret_event
            #finish_after
            __stockbot_out
        }
    }
}
