//! Compile-time diagnostics of `#[instrument_trade]` (committed `.stderr` files) and the
//! function shapes it accepts.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
