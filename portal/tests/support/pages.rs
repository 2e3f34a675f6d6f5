#![allow(dead_code)]

//! What the page tests share: logging in through the login page, and the photograph and
//! accessibility check every page gets.

use browser_test::Browser;

/// Log in as `login` with `password` through the login page's password tab.
pub fn sign_in(b: &Browser, base: &str, login: &str, password: &str) {
    b.goto(&format!("{base}/login?tab=password"));
    b.fill("#login", login);
    b.fill("#password", password);
    b.click("form[action='/login/password'] button[type=submit]");
    b.wait_path("/");
}

/// Photograph the page (`target/browser-artifacts/…`) and check it with axe-core.
pub fn page(b: &Browser, name: &str) {
    b.screenshot(name);
    b.axe(name);
}
