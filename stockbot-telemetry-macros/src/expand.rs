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
    } = checked;
    let level = format_ident!("{}", level);
    let (calls, errors, duration) = (
        format!("{metric}_calls_total"),
        format!("{metric}_errors_total"),
        format!("{metric}_duration_seconds"),
    );
    let field_names = fields.iter().map(|(k, _)| k);
    let field_values = fields.iter().map(|(_, v)| v);
    let audit = args.audit.map(|_| quote!(audit = true,));
    let label_values = labels.iter().map(|l| {
        let (_, expr) = fields
            .iter()
            .find(|(k, _)| k == l)
            .expect("validated: every label is a field");
        let name = l.to_string();
        quote!(#p::metrics::Label::new(#name, ::std::string::ToString::to_string(&(#expr))))
    });
    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let opaque = ret_ty.to_string().contains("impl ");
    let annotated = (!opaque).then(|| quote!(: #ret_ty));
    let call = if sig.asyncness.is_some() {
        quote! {
            #p::tracing::Instrument::instrument(async move #block, ::std::clone::Clone::clone(&__stockbot_span)).await
        }
    } else {
        let closure_ret = (!opaque).then(|| quote!(-> #ret_ty));
        quote! {{
            let __stockbot_entered = __stockbot_span.enter();
            #[allow(clippy::redundant_closure_call)]
            (move || #closure_ret #block)()
        }}
    };
    let ret_event = args.ret.map(|_| {
        quote! {
            #p::tracing::event!(parent: &__stockbot_span, #p::tracing::Level::#level, r#return = ?&__stockbot_out);
        }
    });
    let err_event = args.err.map(|_| {
        quote! {
            if let ::std::result::Result::Err(__stockbot_e) = &__stockbot_out {
                #p::tracing::event!(parent: &__stockbot_span, #p::tracing::Level::ERROR, error.message = %__stockbot_e, "{}", __stockbot_e);
            }
        }
    });
    quote! {
        #(#attrs)*
        #vis #sig {
            static __STOCKBOT_SITE: #p::Site = #p::Site {
                operation: #operation,
                calls: #calls,
                errors: #errors,
                duration: #duration,
            };
            let __stockbot_span = #p::tracing::span!(
                target: ::std::module_path!(),
                #p::tracing::Level::#level,
                #span_name,
                operation = #operation,
                #(#field_names = #p::tracing::field::display(&(#field_values)),)*
                #audit
                otel.status_code = #p::tracing::field::Empty,
                error.kind = #p::tracing::field::Empty,
            );
            let __stockbot_guard = #p::CallGuard::start(
                &__STOCKBOT_SITE,
                &__stockbot_span,
                ::std::vec![#(#label_values),*],
            );
            let __stockbot_out #annotated = #call;
            #ret_event
            #err_event
            #[allow(clippy::needless_borrow)]
            {
                #[allow(unused_imports)]
                use #p::{KindOk as _, KindViaResult as _, KindViaTrait as _};
                __stockbot_guard.finish((&&&#p::Wrap(&__stockbot_out)).__stockbot_outcome());
            }
            __stockbot_out
        }
    }
}
