//! Fuzz target: any bytes as a request path and host must be routed or refused — never a
//! panic — and whatever is accepted must already be in normal form and free of the
//! spellings the matcher exists to refuse.

#![no_main]

use gateway_core::{Route, RouteTable, normalize_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (path, host) = input;
    let table = RouteTable::new(vec![
        Route::new("/", "fallback"),
        Route::new("/api/users", "user"),
        Route::new("/api/payments", "payment"),
        Route::new("/api", "partner").for_host("partners.example.com"),
    ])
    .expect("a valid table");
    if let Ok(found) = table.resolve(Some(host), path) {
        assert_eq!(
            normalize_path(&found.path).as_deref(),
            Ok(found.path.as_str())
        );
        assert!(!found.path.split('/').any(|segment| segment == ".."));
        assert!(!found.path.to_ascii_lowercase().contains("%2f"));
        if found.route.upstream == "user" {
            assert!(found.path.starts_with("/api/users"));
        }
    }
});
