//! What a client's path may contain before any of it reaches an upstream URL.

use std::borrow::Cow;

/// `rest` with every encoded `/` (`%2F`, `%2f`) written as `/`: a client (or a generated one,
/// which percent-encodes a path parameter) may send a catch-all's value as one segment, and it
/// means the same path. [`check_path`] runs on the result, so `..%2F..` is still refused.
pub(crate) fn normalize(rest: &str) -> Cow<'_, str> {
    if !rest.contains("%2F") && !rest.contains("%2f") {
        return Cow::Borrowed(rest);
    }
    Cow::Owned(rest.replace("%2F", "/").replace("%2f", "/"))
}

/// `rest` is the raw (still percent-encoded) path below a mount, starting with `/`. Every
/// segment must be a plain, non-empty name: no `.`/`..` (encoded or not), no encoded `/` or
/// `\`, nothing outside the URL path characters, so the upstream path cannot leave `base_url`.
pub(crate) fn check_path(rest: &str) -> Result<(), &'static str> {
    let Some(segments) = rest.strip_prefix('/') else {
        return Err("the path must start with '/'");
    };
    if segments.is_empty() {
        return Ok(());
    }
    for segment in segments.split('/') {
        let decoded = percent_decode(segment).ok_or("bad percent-encoding in the path")?;
        if decoded.is_empty() || decoded == "." || decoded == ".." {
            return Err("empty, '.' or '..' path segments are not allowed");
        }
        if decoded.contains(['/', '\\']) || decoded.chars().any(char::is_control) {
            return Err("encoded separators or control characters are not allowed in the path");
        }
        let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@".contains(&b);
        if !segment.bytes().all(plain) {
            return Err("the path has characters outside the URL path set");
        }
    }
    Ok(())
}

fn percent_decode(segment: &str) -> Option<String> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_slashes_are_slashes_then_checked() {
        assert_eq!(normalize("/v1%2Ftokens%2fx"), "/v1/tokens/x");
        assert_eq!(normalize("/v1/tokens"), "/v1/tokens");
        for bad in [
            "/%2e%2e%2Fadmin",
            "/a%2F%2Fb",
            "/a%2F",
            "/..%2f..",
            "/a%5Cb",
        ] {
            assert!(check_path(&normalize(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_stay_under_the_base() {
        for ok in [
            "/",
            "/v1/tokens",
            "/v1/tokens/So11111111111111111111111111111111111111112",
            "/a%20b",
            "/x:y@z",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/..",
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1/%2E%2E",
            "/.",
            "/v1//x",
            "/v1/",
            "/a%2fb",
            "/a%5Cb",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "/a\"b",
            "/a<b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
