//! Error and event bodies: any bytes get `Ok` or a refusal whose details
//! stay within the cap, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    error::ApiError,
    payload::{AnalyticsEvent, ErrorReport, MAX_DETAILS, parse_batch},
};

const RECEIVED_MS: i64 = 1_767_225_600_000;

fn check<T>(result: Result<Vec<T>, ApiError>, max_items: usize) {
    match result {
        Ok(items) => assert!(!items.is_empty() && items.len() <= max_items),
        Err(ApiError::Invalid { details, .. }) => assert!(details.len() <= MAX_DETAILS),
        Err(_) => {}
    }
}

fuzz_target!(|body: &[u8]| {
    check(parse_batch::<ErrorReport>(body, 100, RECEIVED_MS), 100);
    check(parse_batch::<AnalyticsEvent>(body, 100, RECEIVED_MS), 100);
});
