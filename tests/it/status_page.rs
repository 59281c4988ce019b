//! The status page (`/` on the admin listener) and its in-place refresh
//! (`/admin/page-fragment`): the version, each host's state in words, the time left on an
//! ejection, the short history (per-host charts sampled once a second, recent events).

use std::time::Duration;

use ringward_tests::{Fleet, client, eventually_async};

use crate::support::{TOKEN, config_for, get_key, host_of, post_admin, start};

/// The page's content as its refresh fetches it.
async fn fragment(router: &ringward::Router) -> String {
    let reply = client::get(router.admin_addr(), "/admin/page-fragment")
        .await
        .expect("page fragment");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    reply.text()
}

/// The host table's row of `host`.
fn row<'p>(page: &'p str, host: &str) -> &'p str {
    let start = page
        .find(&format!("data-host=\"{host}\""))
        .unwrap_or_else(|| panic!("no row for {host}:\n{page}"));
    let len = page[start..].find("</tr>").expect("row ends");
    &page[start..start + len]
}

/// The recent events list.
fn events(page: &str) -> &str {
    let start = page
        .find("id=\"events\"")
        .unwrap_or_else(|| panic!("no events section:\n{page}"));
    &page[start..]
}

/// The time left on an ejection in `row`, in milliseconds.
fn left_ms(row: &str) -> Option<u64> {
    let at = row.find("data-ms=\"")? + "data-ms=\"".len();
    row[at..].split('"').next()?.parse().ok()
}

/// The peak of the first chart (requests per second) in `row`.
fn rps_peak(row: &str) -> f64 {
    let at = row.find("data-peak=\"").expect("a chart") + "data-peak=\"".len();
    row[at..]
        .split('"')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

#[tokio::test]
async fn the_page_shows_the_version_states_history_and_an_operator_ejection() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let admin = router.admin_addr();

    let page = client::get(admin, "/").await.expect("page");
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(
        page.contains(&format!("ringward {}", env!("CARGO_PKG_VERSION"))),
        "no version:\n{page}"
    );
    assert!(page.contains("<div id=\"live\">"), "the refreshed part");
    let target = host_of(&router, "alice").await;
    assert!(
        row(&page, &target).contains("<span class=\"badge healthy\">healthy</span>"),
        "{}",
        row(&page, &target)
    );

    // Traffic on the target shows in its requests-per-second chart once the health task has
    // sampled it (once a second: the first sample is the baseline).
    for _ in 0..20 {
        assert_eq!(get_key(&router, "alice").await.status, 200);
    }
    eventually_async(Duration::from_secs(5), "requests in the chart", || async {
        rps_peak(row(&fragment(&router).await, &target)) > 0.0
    })
    .await;
    let other = fleet
        .named_addrs()
        .into_iter()
        .map(|(n, _)| n)
        .find(|n| *n != target)
        .expect("another host");
    assert_eq!(
        rps_peak(row(&fragment(&router).await, &other)),
        0.0,
        "no traffic, no rate"
    );

    let bearer = format!("Bearer {TOKEN}");
    let reply = post_admin(
        &router,
        &format!("/admin/hosts/{target}/eject"),
        Some(&bearer),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let wanted = "ejected by an operator, out for 5\u{a0}min 0\u{a0}s";
    eventually_async(
        Duration::from_secs(2),
        "the ejection in the events",
        || async { events(&fragment(&router).await).contains(wanted) },
    )
    .await;
    let page = fragment(&router).await;
    let line = events(&page)
        .lines()
        .find(|l| l.contains(wanted))
        .expect("an event line");
    assert!(
        line.contains(&format!("<span class=\"name\">{target}</span>")),
        "the event names the host: {line}"
    );
    let ejected = row(&page, &target);
    assert!(
        ejected.contains("<span class=\"badge ejected\">ejected</span>"),
        "{ejected}"
    );
    assert!(ejected.contains("<code>operator</code>"), "{ejected}");
    // The default ejection_max is 300 s; the ejection is a few milliseconds old.
    let left = left_ms(ejected).unwrap_or_else(|| panic!("no time left in {ejected}"));
    assert!((290_000..=300_000).contains(&left), "{left} ms left");
    assert!(ejected.contains(" left</b>"), "{ejected}");

    let reply = post_admin(
        &router,
        &format!("/admin/hosts/{target}/restore"),
        Some(&bearer),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    eventually_async(
        Duration::from_secs(2),
        "the restore in the events",
        || async {
            let page = fragment(&router).await;
            let list = events(&page);
            // Newest first: the restore above the ejection.
            match (list.find("restored by an operator"), list.find(wanted)) {
                (Some(restored), Some(ejected)) => restored < ejected,
                _ => false,
            }
        },
    )
    .await;
    let page = fragment(&router).await;
    assert!(
        left_ms(row(&page, &target)).is_none(),
        "no time left once back"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_reload_that_removes_a_host_shows_in_the_events_and_the_host_leaves_the_page() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let mut config = config_for(&fleet);
    let removed = config.hosts.pop().expect("a host").name;
    assert!(
        fragment(&router)
            .await
            .contains(&format!("data-host=\"{removed}\""))
    );
    router.reload(config).expect("reload applies");
    eventually_async(
        Duration::from_secs(2),
        "the reload in the events",
        || async {
            let page = fragment(&router).await;
            let list = events(&page);
            list.contains(&format!("hosts changed: removed {removed}"))
                && list.contains("config reloaded")
        },
    )
    .await;
    let page = fragment(&router).await;
    assert!(
        !page.contains(&format!("data-host=\"{removed}\"")),
        "{removed} still has a row"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
