//! Tests for the fingerprint: the pinned value, messages, stacks and paths.

use super::{
    canonical, compute, fingerprint,
    message::{MAX_MESSAGE_BYTES, push_message},
    path::push_path,
    raw_key,
    stack::{MAX_FRAMES, push_frames},
};

const CHROME_STACK: &str = "TypeError: Cannot read properties of undefined (reading 'map')
    at renderList (https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5)
    at async loadOrders (https://app.example.com/assets/main.3f2a9c1b.js?v=3:22:17)
    at new OrderView (https://app.example.com/assets/chunk-AB12CD34.js:1:2044)
    at Object.<anonymous> (https://app.example.com/assets/app-4f9e2a.min.js:3:99)
    at https://app.example.com/assets/boot.js:1:2
    at Array.map (<anonymous>)";

const FIREFOX_STACK: &str = "renderList@https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5
async*loadOrders@https://app.example.com/assets/main.3f2a9c1b.js?v=3:22:17
OrderView@https://app.example.com/assets/chunk-AB12CD34.js:1:2044
global code@https://app.example.com/assets/boot.js:1:2
forEach@[native code]
https://app.example.com/assets/boot.js:3:4";

fn frames(stack: &str) -> Vec<String> {
    let mut out = String::new();
    push_frames(&mut out, stack);
    out.lines().skip(1).map(str::to_owned).collect()
}

fn message(text: &str) -> String {
    let mut out = String::new();
    push_message(&mut out, text);
    out
}

fn path(p: &str) -> String {
    let mut out = String::new();
    push_path(&mut out, p);
    out
}

#[test]
fn is_16_lowercase_hex() {
    for fp in [fingerprint(None, "", None), fingerprint(Some("TypeError"), "x", Some(CHROME_STACK))] {
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{fp}");
    }
}

/// Pins the output for one input: if this fails, the normalisation or the
/// hash changed, and every stored fingerprint with it (see module docs).
#[test]
fn pinned_value() {
    let message = "Cannot read properties of undefined (reading 'map')";
    let stack = "TypeError: Cannot read properties of undefined (reading 'map')\n    \
                 at renderList (https://app.example.com/assets/main.3f2a9c1b.js:10:5)";
    assert_eq!(
        canonical(Some("TypeError"), message, Some(stack)),
        "TypeError\nCannot read properties of undefined (reading <str>)\nrenderList@/assets/main.[hash].js"
    );
    assert_eq!(fingerprint(Some("TypeError"), message, Some(stack)), "a9912db1abd6077c");
}

#[test]
fn canonical_form() {
    assert_eq!(
        canonical(Some("TypeError"), "Cannot read properties of undefined (reading 'map')", Some(CHROME_STACK)),
        "TypeError\nCannot read properties of undefined (reading <str>)\n\
         renderList@/assets/main.[hash].js\n\
         loadOrders@/assets/main.[hash].js\n\
         OrderView@/assets/chunk-[hash].js\n\
         Object.<anonymous>@/assets/app-[hash].min.js\n\
         ?@/assets/boot.js"
    );
}

#[test]
fn variable_parts_of_the_message_do_not_matter() {
    let a = "Order 1234 (0x7f3a, id 3f2a9c1bdeadbeef, session 6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69) failed at https://api.example.com/orders/1234?x=1 for 'alice' after 2.5s: \"quota\"";
    let b = "Order 98  (0xdeadbeef, id 0123456789abcdef, session 00000000-0000-4000-8000-000000000000)  failed at http://localhost:8080/o for 'bob' after 10s: \"other reason\"";
    assert_eq!(fingerprint(Some("Error"), a, None), fingerprint(Some("Error"), b, None));
    assert_eq!(
        message(a),
        "Order <num> (<hex>, id <hex>, session <uuid>) failed at <url> for <str> after <num>s: <str>"
    );
}

#[test]
fn blob_and_data_urls() {
    assert_eq!(
        message("Failed to load blob:https://app.example.com/6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69 now"),
        "Failed to load <url> now"
    );
    assert_eq!(message("Bad image data:image/png;base64,iVBORw0KGgo="), "Bad image <url>");
    assert_eq!(message("Invalid data: none"), "Invalid data: none");
}

#[test]
fn apostrophes_are_not_quotes() {
    assert_eq!(message("Can't find 'x1' and won't retry"), "Can't find <str> and won't retry");
    assert_eq!(message("Unmatched ' quote 42"), "Unmatched ' quote <num>");
}

#[test]
fn whitespace_is_collapsed_and_trimmed() {
    assert_eq!(message("  a \t\n b  "), "a b");
    assert_eq!(message("é 12 ü"), "é <num> ü");
}

#[test]
fn names_with_digits_keep_their_letters() {
    assert_eq!(message("handler2 failed with E1234 on v1.2.3"), "handler<num> failed with E<num> on v<num>");
    assert_eq!(message("ids ab12 and deadbeef stay"), "ids ab<num> and deadbeef stay");
}

#[test]
fn message_of_only_digits() {
    assert_eq!(message("42"), "<num>");
    assert_eq!(fingerprint(None, "42", None), fingerprint(None, "1337", None));
    assert_ne!(fingerprint(None, "42", None), fingerprint(None, "", None));
}

#[test]
fn different_messages_differ() {
    assert_ne!(fingerprint(None, "Cannot read x", None), fingerprint(None, "Cannot write x", None));
    assert_ne!(fingerprint(Some("TypeError"), "x", None), fingerprint(Some("RangeError"), "x", None));
}

#[test]
fn long_messages_are_capped() {
    let head = "a".repeat(MAX_MESSAGE_BYTES);
    assert_eq!(
        fingerprint(None, &format!("{head} tail one"), None),
        fingerprint(None, &format!("{head} tail two"), None)
    );
    let multibyte = "é".repeat(MAX_MESSAGE_BYTES);
    assert!(message(&multibyte).len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn missing_type_is_error() {
    assert_eq!(fingerprint(None, "x", None), fingerprint(Some("Error"), "x", None));
    assert_eq!(fingerprint(Some("  "), "x", None), fingerprint(Some("Error"), "x", None));
}

#[test]
fn empty_stack_is_no_stack() {
    assert_eq!(fingerprint(None, "x", Some("")), fingerprint(None, "x", None));
    assert_eq!(canonical(None, "x", Some("")), "Error\nx");
}

#[test]
fn chrome_stack_parses() {
    assert_eq!(
        frames(CHROME_STACK),
        [
            "renderList@/assets/main.[hash].js",
            "loadOrders@/assets/main.[hash].js",
            "OrderView@/assets/chunk-[hash].js",
            "Object.<anonymous>@/assets/app-[hash].min.js",
            "?@/assets/boot.js",
        ]
    );
}

#[test]
fn firefox_and_safari_stack_parses() {
    assert_eq!(
        frames(FIREFOX_STACK),
        [
            "renderList@/assets/main.[hash].js",
            "loadOrders@/assets/main.[hash].js",
            "OrderView@/assets/chunk-[hash].js",
            "global code@/assets/boot.js",
            "?@/assets/boot.js",
        ]
    );
}

#[test]
fn safari_forms() {
    let stack = "module code@https://app.example.com/a.js:1:2\n@https://app.example.com/b.js:3:4\n\
                 https://app.example.com/c.js:5:6\neval code@\n[native code]";
    assert_eq!(frames(stack), ["module code@/a.js", "?@/b.js", "?@/c.js"]);
}

#[test]
fn eval_frames_point_at_the_eval_call() {
    let chrome = "    at eval (eval at compile (https://app.example.com/app.js:10:5), <anonymous>:1:1)\n    \
                  at Object.eval (eval at <anonymous> (https://app.example.com/app.js:3:5), <anonymous>:1:1)";
    assert_eq!(frames(chrome), ["eval@/app.js", "Object.eval@/app.js"]);
    let firefox = "run@https://app.example.com/app.js line 2 > eval:1:5\nbuild@https://app.example.com/app.js line 9 > Function:3:1";
    assert_eq!(frames(firefox), ["run@/app.js", "build@/app.js"]);
}

#[test]
fn position_query_and_bundle_hash_do_not_matter() {
    let a = "    at renderList (https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5)";
    let b = "    at renderList (https://cdn.example.net/assets/main.9c1b77e0.js?v=4#x:812:44)";
    assert_eq!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
    let vite_a = "    at renderList (https://app.example.com/assets/index-DiwrgTda.js:1:2)";
    let vite_b = "    at renderList (https://app.example.com/assets/index-B-Xk2_3a.js:1:2)";
    assert_eq!(fingerprint(None, "x", Some(vite_a)), fingerprint(None, "x", Some(vite_b)));
}

#[test]
fn different_top_function_differs() {
    let a = "    at handleClick (https://app.example.com/main.js:1:2)";
    let b = "    at handleSubmit (https://app.example.com/main.js:1:2)";
    assert_ne!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
}

#[test]
fn different_file_differs() {
    let a = "    at render (https://app.example.com/orders.js:1:2)";
    let b = "    at render (https://app.example.com/users.js:1:2)";
    assert_ne!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
}

#[test]
fn minified_names_are_wildcards() {
    let a = "    at t.value (https://app.example.com/main.3f2a9c1b.js:1:2)\n    at e (https://app.example.com/main.3f2a9c1b.js:1:9)";
    let b = "    at n.value (https://app.example.com/main.77aa01ff.js:1:5)\n    at Ab (https://app.example.com/main.77aa01ff.js:1:7)";
    assert_eq!(frames(a), ["?.value@/main.[hash].js", "?@/main.[hash].js"]);
    assert_eq!(frames(a), frames(b));
}

#[test]
fn foreign_frames_are_skipped() {
    let stack = "Error: boom
    at Array.forEach (<anonymous>)
    at Generator.next (native)
    at Promise.all (index 0)
    at inject (chrome-extension://abcdefghijklmnop/content.js:1:2)
    at hook (webkit-masked-url://hidden/:1:2)
    at debounce (https://app.example.com/node_modules/lodash/debounce.js:10:1)
    at jq (https://code.jquery.com/jquery-3.7.1.min.js:2:100)
    at dispatch (https://app.example.com/assets/vendor.3f2a9c1b.js:1:1)
    at wrapped (https://app.example.com/observer.js:1:1)
    at fs (node:internal/fs:1:1)
inject@moz-extension://0f1e2d3c/content.js:1:2
forEach@[native code]
    at onSave (https://app.example.com/assets/editor.js:5:6)";
    assert_eq!(frames(stack), ["onSave@/assets/editor.js"]);
}

#[test]
fn no_in_app_frame_falls_back_to_the_message() {
    let stack = "    at inject (chrome-extension://abc/content.js:1:2)\n    at Array.map (<anonymous>)";
    assert_eq!(fingerprint(Some("TypeError"), "x", Some(stack)), fingerprint(Some("TypeError"), "x", None));
}

#[test]
fn prose_with_at_signs_is_not_a_frame() {
    let stack = "Error: no account for alice@example.com\n    at least one retry failed\n    at login (https://app.example.com/login.js:1:2)";
    assert_eq!(frames(stack), ["login@/login.js"]);
}

#[test]
fn only_the_top_five_frames_count() {
    let top: String = (0..5)
        .map(|i| format!("    at step{} (https://app.example.com/app.js:{i}:1)\n", ["a", "b", "c", "d", "e"][i]))
        .collect();
    let a = format!("{top}    at deepOne (https://app.example.com/app.js:9:9)");
    let b = format!("{top}    at deepTwo (https://app.example.com/other.js:9:9)");
    assert_eq!(frames(&a).len(), MAX_FRAMES);
    assert_eq!(fingerprint(None, "x", Some(&a)), fingerprint(None, "x", Some(&b)));
}

#[test]
fn path_normalisation() {
    for (input, expected) in [
        ("/assets/main.3f2a9c1b.js", "/assets/main.[hash].js"),
        ("/assets/chunk-AB12CD34.js", "/assets/chunk-[hash].js"),
        ("/assets/chunk-KQXZJHAB.js", "/assets/chunk-[hash].js"),
        ("/assets/app-4f9e2a.min.js", "/assets/app-[hash].min.js"),
        ("/assets/index-DiwrgTda.js", "/assets/index-[hash].js"),
        ("/assets/index-B-Xk2_3a.js", "/assets/index-[hash].js"),
        ("/static/js/787.3f2a9c1b.chunk.js", "/static/js/787.[hash].chunk.js"),
        ("/_next/static/chunks/pages/_app-0123456789abcdef.js", "/_next/static/chunks/pages/_app-[hash].js"),
        ("/_next/static/Lz3xF_qzK9v-1aB2c3D4e/_buildManifest.js", "/_next/static/[hash]/_buildManifest.js"),
        ("/orders/12345/edit", "/orders/[id]/edit"),
        ("/6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69", "/[id]"),
        ("/src/components/UserProfile.tsx", "/src/components/UserProfile.tsx"),
        ("/src/user-Settings.js", "/src/user-Settings.js"),
        ("/./src/App.js", "/./src/App.js"),
    ] {
        assert_eq!(path(input), expected, "{input}");
    }
}

#[test]
fn huge_stack_is_handled() {
    // One 64 KiB line, then 64 KiB of frames, then junk.
    let long_line = format!("Error: {}", "x".repeat(64 * 1024));
    let frame = "    at renderList (https://app.example.com/assets/main.3f2a9c1b.js:10:5)\n";
    let many = frame.repeat(64 * 1024 / frame.len());
    let stack = format!("{long_line}\n{many}{}", "@".repeat(64 * 1024));
    let fp = fingerprint(Some("Error"), &"y".repeat(64 * 1024), Some(&stack));
    assert_eq!(fp.len(), 16);
    assert_eq!(frames(&stack), vec!["renderList@/assets/main.[hash].js"; MAX_FRAMES]);
    // Nothing but one giant unparseable line.
    let junk = "at ".to_owned() + &"(".repeat(64 * 1024) + ")";
    assert!(frames(&junk).is_empty());
}

#[test]
fn the_cache_gives_what_computing_gives() {
    let stack = "TypeError: x\n    at render (https://app.example/main.3f2a9c1b.js:1:2)";
    let inputs = [
        (Some("TypeError"), "Cannot read 'a'", Some(stack)),
        (Some("TypeError"), "Cannot read 'a'", None),
        (None, "Cannot read 'a'", Some(stack)),
        // The same bytes split differently between the parts.
        (Some("Type"), "ErrorCannot read 'a'", Some(stack)),
        (Some(""), "", Some("")),
        (None, "", None),
    ];
    for (error_type, message, stack) in inputs {
        let first = fingerprint(error_type, message, stack);
        assert_eq!(first, compute(error_type, message, stack), "{error_type:?} {message:?}");
        assert_eq!(fingerprint(error_type, message, stack), first, "cached");
    }
    let seed = 7;
    let keys: std::collections::HashSet<u128> = inputs.iter().map(|(t, m, s)| raw_key(seed, *t, m, *s)).collect();
    assert_eq!(keys.len(), inputs.len(), "every split of the inputs has its own key");
}
