//! The Python and JavaScript shims' own tests (`sdk-python/tests`, `sdk-js/test`), run with the
//! suite.
