//! Any input: `hanzo_manifest::parse` never panics, and a manifest it accepts
//! renders through `explain` into YAML that parses back to the same manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = hanzo_manifest::parse(text, "hanzo.yaml") {
        let explained = hanzo_manifest::explain(&m);
        let again = hanzo_manifest::parse(&explained, "hanzo.yaml").expect("explain output parses");
        assert_eq!(m, again, "explain output parses to the same manifest");
    }
});
