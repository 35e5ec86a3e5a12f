use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn provider_toml(extra: &str) -> String {
    format!(
        r#"
[[providers]]
name = "alchemy"
key_env = "ALCHEMY_API_KEY"
key_placement = "path"
{extra}
[providers.clusters]
mainnet = "https://solana-mainnet.g.alchemy.com/v2"
[providers.rpc]
getBalance = 10
"#
    )
}

#[test]
fn embedded_default_loads_without_any_key() {
    let config = Config::from_toml(EMBEDDED_DEFAULT, &env(&[])).expect("default config");
    assert_eq!(config.server.max_body_bytes, 50 * 1024);
    assert_eq!(config.server.max_batch, 20);
    // Only the demo's derived providers run (the cluster and its mirror, a routing pool):
    // every keyed one waits for its key.
    let enabled: Vec<_> = config
        .enabled_providers()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(enabled, [demo::LOCALNET_PROVIDER, "localnet-mirror"]);
    let alchemy = &config.providers[0];
    assert_eq!(
        alchemy.disabled_reason.as_deref(),
        Some("no API key: set ALCHEMY_API_KEY")
    );
}

#[test]
fn a_key_in_the_environment_enables_its_provider() {
    let config = Config::from_toml(EMBEDDED_DEFAULT, &env(&[("HELIUS_API_KEY", "h-key")])).unwrap();
    let names: Vec<_> = config
        .enabled_providers()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["helius", demo::LOCALNET_PROVIDER, "localnet-mirror"]
    );
    assert_eq!(
        config.providers[1].api_key.as_ref().unwrap().expose(),
        "h-key"
    );
}

#[test]
fn enabled_provider_without_key_names_the_field() {
    let err = Config::from_toml(&provider_toml("enabled = true"), &env(&[])).unwrap_err();
    let line = err.to_string();
    assert!(line.contains("providers[0].key_env"), "{line}");
    assert!(line.contains("ALCHEMY_API_KEY"), "{line}");
    assert!(!line.contains('\n'), "one line: {line}");
}

#[test]
fn unknown_key_is_rejected_with_its_path() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n";
    let line = Config::from_toml(text, &env(&[])).unwrap_err().to_string();
    assert!(line.contains("server"), "{line}");
    assert!(line.contains("lisen"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn unknown_key_inside_a_provider_is_rejected() {
    let text = provider_toml("colour = \"blue\"");
    let line = Config::from_toml(&text, &env(&[])).unwrap_err().to_string();
    assert!(
        line.contains("providers[0]") && line.contains("colour"),
        "{line}"
    );
}

#[test]
fn bad_urls_are_rejected() {
    let text = provider_toml("").replace("https://solana-mainnet.g.alchemy.com/v2", "not a url");
    let line = Config::from_toml(&text, &env(&[])).unwrap_err().to_string();
    assert!(line.contains("providers[0].clusters"), "{line}");

    let text =
        provider_toml("").replace("https://solana-mainnet.g.alchemy.com/v2", "ftp://x.example");
    let line = Config::from_toml(&text, &env(&[])).unwrap_err().to_string();
    assert!(line.contains("providers[0].clusters.mainnet"), "{line}");

    let text = "[server]\npublic_base_url = \"nope\"\n";
    let line = Config::from_toml(text, &env(&[])).unwrap_err().to_string();
    assert!(line.contains("server.public_base_url"), "{line}");
}

#[test]
fn zero_limits_are_rejected() {
    let line = Config::from_toml("[server]\nmax_batch = 0\n", &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(line.contains("server.max_batch"), "{line}");
}

#[test]
fn connection_limits_are_bounded_and_named() {
    for (text, field) in [
        (
            "header_read_timeout_ms = 0",
            "server.header_read_timeout_ms",
        ),
        ("idle_timeout_ms = 0", "server.idle_timeout_ms"),
        ("max_connections = 0", "server.max_connections"),
        ("max_connections = 50000000", "server.max_connections"),
        ("body_read_timeout_ms = 0", "server.body_read_timeout_ms"),
        ("idle_timeout_ms = 86400000", "server.idle_timeout_ms"),
        // A body timeout at or above the whole-request one could never answer 408.
        (
            "request_timeout_ms = 5000\nbody_read_timeout_ms = 5000",
            "server.body_read_timeout_ms",
        ),
    ] {
        let line = Config::from_toml(&format!("[server]\n{text}\n"), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(line.contains(field), "{text}: {line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    let config = Config::from_toml(EMBEDDED_DEFAULT, &env(&[])).unwrap();
    assert_eq!(config.server.header_read_timeout_ms, 5_000);
    assert_eq!(config.server.idle_timeout_ms, 60_000);
    assert_eq!(config.server.max_connections, 4_096);
    assert_eq!(config.server.body_read_timeout_ms, 10_000);
}

#[test]
fn duplicate_provider_names_are_rejected() {
    let text = format!("{}{}", provider_toml(""), provider_toml(""));
    let line = Config::from_toml(&text, &env(&[("ALCHEMY_API_KEY", "k")]))
        .unwrap_err()
        .to_string();
    assert!(
        line.contains("providers[1].name") && line.contains("duplicate"),
        "{line}"
    );
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let config = Config::from_toml(
        EMBEDDED_DEFAULT,
        &env(&[
            ("ALCHEMY_API_KEY", "alchemy-secret-value"),
            ("REDIS_URL", "redis://:pw-secret@127.0.0.1:6379"),
        ]),
    )
    .unwrap();
    let dump = format!("{config:?}");
    assert!(!dump.contains("alchemy-secret-value"));
    assert!(!dump.contains("pw-secret"));
}

#[test]
fn listen_override_wins() {
    let config = Config::from_toml(EMBEDDED_DEFAULT, &env(&[]))
        .unwrap()
        .with_listen(Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(config.server.listen.port(), 9999);
}

/// A `[localnet]` section with its files under `dir` and any free port (what tests use).
fn localnet_toml(dir: &std::path::Path) -> String {
    format!(
        "[localnet]\nlisten = \"127.0.0.1:0\"\nkeypair_dir = \"{d}\"\nfee_payers = [\"{d}/fee-payer.json\"]\nwallets = [{{ keypair = \"{d}/client.json\" }}]\n",
        d = dir.display()
    )
}

#[test]
fn payment_without_pay_to_is_refused_at_load_naming_the_field() {
    let line = Config::from_toml("[payment]\nenabled = true\n", &env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        line,
        "config payment.pay_to: is required when payment is enabled (or add [localnet] for the demo)"
    );
}

#[test]
fn payment_needs_accepts_and_a_facilitator() {
    let text =
        "[payment]\nenabled = true\npay_to = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"\n";
    let line = Config::from_toml(text, &env(&[])).unwrap_err().to_string();
    assert!(line.contains("payment.accepts"), "{line}");
    let text = format!(
        "{text}[[payment.accepts]]\nnetwork = \"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\"\nasset = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"\n"
    );
    let line = Config::from_toml(&text, &env(&[])).unwrap_err().to_string();
    assert!(
        line.contains("payment.enabled") && line.contains("facilitator"),
        "{line}"
    );
    let bad = text.replace(
        "pay_to = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"",
        "pay_to = \"nope\"",
    );
    let line = Config::from_toml(&bad, &env(&[])).unwrap_err().to_string();
    assert!(
        line.contains("payment.pay_to") && line.contains("base58"),
        "{line}"
    );
}

#[test]
fn remote_facilitator_headers_must_be_in_the_environment_at_load() {
    let text = r#"
[payment]
enabled = true
pay_to = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
[[payment.accepts]]
network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
asset = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
[[payment.remote_facilitators]]
name = "hosted"
url = "https://facilitator.example/"
headers_from_env = { authorization = "HOSTED_AUTH" }
"#;
    let line = Config::from_toml(text, &env(&[])).unwrap_err().to_string();
    assert!(
        line.contains("payment.remote_facilitators[0].headers_from_env.authorization")
            && line.contains("HOSTED_AUTH"),
        "{line}"
    );
    Config::from_toml(text, &env(&[("HOSTED_AUTH", "Bearer x")])).expect("set: accepted");
}

#[test]
fn the_demo_is_derived_before_validation_from_localnet_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[payment]\nenabled = true\n{}", localnet_toml(dir.path()));
    let config = Config::from_toml(&text, &env(&[])).expect("the demo derives what it needs");
    let local = config.localnet.as_ref().unwrap();
    assert_ne!(
        local.listen.port(),
        0,
        "port 0 is pinned so the provider URL is known"
    );
    let provider = config
        .providers
        .iter()
        .find(|p| p.name == demo::LOCALNET_PROVIDER)
        .unwrap();
    assert!(provider.is_enabled());
    assert_eq!(
        provider.clusters[&Cluster::Devnet].as_str(),
        format!("http://{}/", local.listen)
    );
    // payTo is the owner of the keypair file genesis will read (generated now).
    let pay_to = crate::keyfile::read_keypair_file(&local.pay_to_keypair_path()).unwrap();
    use solana_signer::Signer;
    assert_eq!(config.payment.pay_to, Some(pay_to.pubkey().to_string()));
    assert_eq!(config.payment.accepts[0].asset, local.mint);
    let facilitator = config.facilitator.as_ref().expect("derived facilitator");
    assert_eq!(
        facilitator.fee_payer_keypair.as_ref(),
        local.fee_payers.first()
    );
    // Loading again derives the same payTo (the file is read, not regenerated).
    let again = Config::from_toml(&text, &env(&[])).unwrap();
    assert_eq!(again.payment.pay_to, config.payment.pay_to);
}

#[test]
fn a_provider_named_localnet_conflicts_with_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}{}",
        provider_toml("").replace("name = \"alchemy\"", "name = \"localnet\""),
        localnet_toml(dir.path())
    );
    let line = Config::from_toml(&text, &env(&[])).unwrap_err().to_string();
    assert!(
        line.starts_with("config localnet:") && line.contains("already named"),
        "{line}"
    );
}

#[test]
fn a_keyed_provider_unpaid_needs_the_explicit_opt_in() {
    let keyed = env(&[("ALCHEMY_API_KEY", "k")]);
    let line = Config::from_toml(&provider_toml(""), &keyed)
        .unwrap_err()
        .to_string();
    assert_eq!(
        line,
        "config payment.enabled: payments are off but provider \"alchemy\" has an API key \
         (ALCHEMY_API_KEY): anyone could use it for free; turn payments on, or set [payment] \
         allow_unpaid = true to serve it unpaid"
    );
    // Without the key the provider is off, so nothing is given away.
    let config = Config::from_toml(&provider_toml(""), &env(&[])).unwrap();
    assert!(!config.serves_keys_unpaid());
    // The opt-in starts it, and `serve` will warn.
    let text = format!("{}\n[payment]\nallow_unpaid = true\n", provider_toml(""));
    let config = Config::from_toml(&text, &keyed).unwrap();
    assert!(config.serves_keys_unpaid());
}

/// The commented `[[services]]` example of gateway.example.toml, uncommented.
fn example_service() -> String {
    commented_block("# [[services]]")
}

/// The commented block of gateway.example.toml starting at `first`, uncommented.
fn commented_block(first: &str) -> String {
    let text = EMBEDDED_DEFAULT;
    let start = text.find(first).expect("the example documents it");
    text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter(|l| !l.starts_with("# #"))
        .map(|l| l.trim_start_matches("# ").to_string() + "\n")
        .collect()
}

#[test]
fn the_documented_service_example_loads() {
    let toml = format!("[payment]\nallow_unpaid = true\n{}", example_service());
    let e = env(&[
        ("WEATHER_TOKEN", "t"),
        ("WEATHER_KEY", "k"),
        ("WEATHER_APPID", "a"),
    ]);
    let config = Config::from_toml(&toml, &e).expect("the example service");
    let routes = config.services[0].parsed_routes().unwrap();
    assert_eq!(routes.len(), 5);
    let forecast = routes
        .iter()
        .find(|r| r.pattern == "/forecast/{city}")
        .unwrap();
    assert_eq!(
        forecast.access.clone(),
        Access::Paid(Price::Usd { units: 2, scale: 3 })
    );
    assert_eq!(config.services[0].secrets.len(), 3);
    // A named variable that is not set is refused at load, naming it.
    let err = Config::from_toml(&toml, &env(&[])).unwrap_err().to_string();
    assert!(err.contains("WEATHER_TOKEN"), "{err}");
}

#[test]
fn the_tokens_shorthand_is_the_documented_service() {
    let e = env(&[("TOKENS_API_KEY", "k")]);
    let shorthand = Config::from_toml(&commented_block("# [tokens]"), &e).expect("[tokens]");
    let service = commented_block("# [[services]]\n# id = \"tokens\"");
    assert!(service.contains("mount = \"/v1/x402/tokens\""), "{service}");
    let service = Config::from_toml(&service, &e).expect("the tokens service");
    assert!(
        shorthand.tokens.is_none(),
        "[tokens] is replaced by its service"
    );
    assert_eq!(shorthand.services.len(), 1);
    assert_eq!(
        format!("{:?}", shorthand.services),
        format!("{:?}", service.services)
    );
    assert_eq!(
        shorthand.service_mount(&shorthand.services[0]),
        "/v1/x402/tokens"
    );
    assert_eq!(
        shorthand.services[0].secrets,
        [Credential::Header("x-api-key".into(), Secret::new("k"))]
    );
}

#[test]
fn services_are_refused_with_a_line_naming_the_field() {
    let service = |id: &str, routes: &str| {
        format!(
            "[[services]]\nid = \"{id}\"\nbase_url = \"http://127.0.0.1:9\"\ntitle = \"T\"\n[services.routes]\n{routes}\n"
        )
    };
    for (toml, needle) in [
        (service("Bad", "\"GET /a\" = \"free\""), "services[0].id"),
        (service("v1", "\"GET /a\" = \"free\""), "would overlap"),
        (
            service("discover", "\"GET /a\" = \"free\""),
            "would overlap",
        ),
        (service("ok", "\"GET a\" = \"free\""), "must start with '/'"),
        (service("ok", "\"FETCH /a\" = \"free\""), "is not one of"),
        (service("ok", "\"GET /a\" = \"cheap\""), "is not \"free\""),
        (
            service("ok", "\"GET /a/:x\" = \"free\"\n\"GET /a/{y}\" = \"free\""),
            "same method and shape",
        ),
        (service("ok", "\"GET /a\" = \"0\""), "a price of 0"),
        (service("ok", "\"GET /a\" = \"0.0000001\""), "decimals"),
        (
            format!(
                "{}{}",
                service("ok", "\"GET /a\" = \"free\""),
                service("ok", "\"GET /b\" = \"free\"")
            ),
            "duplicate service",
        ),
    ] {
        let toml = format!(
            "[payment]\nallow_unpaid = true\naccepts = [{{ network = \"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\", asset = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\" }}]\n{toml}"
        );
        let err = Config::from_toml(&toml, &env(&[])).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // Paid routes called with the operator's key are not served unpaid by accident.
    let toml = "[[services]]\nid = \"s\"\nbase_url = \"http://127.0.0.1:9\"\ntitle = \"T\"\n\
                [services.credentials]\nbearer_env = \"S\"\n[services.routes]\n\"GET /a\" = \"0.01\"\n";
    let err = Config::from_toml(toml, &env(&[("S", "x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow_unpaid"), "{err}");
}
