//! A researcher signed in over HTTP, for the dashboard tests: an account made through the
//! library, the sign-in form with its CSRF cookie, and requests carrying the session cookie.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, COOKIE, SET_COOKIE};

use super::TestApp;

pub const PASSWORD: &str = "a long enough passphrase";

/// A client that does not follow redirects, so that tests see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

fn cookie_from(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// A signed-in researcher: the session cookie and the CSRF token its forms carry.
pub struct Researcher {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Researcher {
    /// Creates the account `name` and signs it in.
    pub async fn sign_in(app: &TestApp, name: &str) -> Researcher {
        let research = server::store::connect(&app.db.url)
            .await
            .expect("the database")
            .research;
        server::researcher::auth::add_researcher(
            research.as_ref(),
            name,
            PASSWORD,
            "test",
            server::clock::now(),
        )
        .await
        .expect("add a researcher");
        let form = client()
            .get(app.url("/researcher/sign-in"))
            .send()
            .await
            .expect("the sign-in form");
        let form_csrf = cookie_from(&form, "proglab_sign_in_csrf").expect("a CSRF cookie");
        let response = client()
            .post(app.url("/researcher/sign-in"))
            .header(COOKIE, format!("proglab_sign_in_csrf={form_csrf}"))
            .form(&[
                ("username", name),
                ("password", PASSWORD),
                ("csrf", &form_csrf),
            ])
            .send()
            .await
            .expect("signed in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let token = cookie_from(&response, "proglab_researcher").expect("a session cookie");
        let cookie = format!("proglab_researcher={token}");
        let mut researcher = Researcher {
            base: app.url(""),
            cookie,
            csrf: String::new(),
        };
        let (status, html) = researcher.page("/researcher").await;
        assert_eq!(status, StatusCode::OK);
        researcher.csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page has a CSRF field")
            .to_owned();
        researcher
    }

    /// A page as a browser asks for it (`Accept: text/html`).
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .send()
            .await
            .expect("a page");
        (response.status(), response.text().await.unwrap_or_default())
    }

    /// JSON from a researcher endpoint.
    pub async fn json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("a response");
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Posts a form as a browser does, with the CSRF token; the raw response.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        client()
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .form(&form)
            .send()
            .await
            .expect("a response")
    }
}
