//! A single pass over raw JSON bytes that measures nesting before anything is parsed, so a
//! bracket bomb costs one linear scan and never reaches the recursive parser.

/// True when `bytes` nests arrays/objects deeper than `max` (strings are skipped correctly).
pub fn exceeds_depth(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::exceeds_depth;

    #[test]
    fn counts_nesting_outside_strings_only() {
        assert!(!exceeds_depth(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(exceeds_depth(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!exceeds_depth(br#"{"a":"[[[[[[[[[[[["}"#, 1));
        assert!(!exceeds_depth(br#"{"a":"\"[[[[["}"#, 1));
        assert!(exceeds_depth(&vec![b'['; 10_000], 32));
    }
}
