//! Procedural macros of `stockbot-telemetry`: `#[instrument_trade]`.
//!
//! Do not depend on this crate directly: use `stockbot_telemetry::instrument_trade`, which
//! re-exports it with the run-time support it expands to (the two are pinned to the same
//! version). The manual is the attribute's documentation in the core crate.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Gives a trading function its span, RED metrics and error record. See
/// `stockbot_telemetry::instrument_trade` for the manual.
#[proc_macro_attribute]
pub fn instrument_trade(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse::<syn::ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let item = proc_macro2::TokenStream::from(item);
            let first = item.clone().into_iter().next();
            let mut out = match first {
                Some(token) => syn::Error::new(
                    token.span(),
                    "`#[instrument_trade]` applies to functions and methods",
                )
                .to_compile_error(),
                None => e.to_compile_error(),
            };
            out.extend(item);
            return out.into();
        }
    };
    let checked = syn::parse::<parse::Args>(attr)
        .and_then(|args| validate::check(&args, &func).map(|c| (args, c)));
    match checked {
        Ok((args, checked)) => expand::expand(&args, &checked, func).into(),
        Err(e) => {
            // Still emit the function, so one mistake does not cascade into others.
            let mut out = e.to_compile_error();
            out.extend(func.into_token_stream());
            out.into()
        }
    }
}
