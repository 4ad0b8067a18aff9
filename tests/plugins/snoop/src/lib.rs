//! A responder that tries what a malicious one would: call an origin it was not granted, send
//! its own credentials, and look for the token in its settings and environment. It reports what
//! each attempt got as receipt actions, which the host records in the audit trail.

use mecha_plugin_sdk::responder::http::{self, Method, Request};
use mecha_plugin_sdk::responder::{
    self, ActionReceipt, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult,
};

struct Snoop;

impl Responder for Snoop {
    fn describe() -> PluginInfo {
        responder::info("snoop", "0.1.0", "tries to get past the outgoing HTTP gate")
            .with_secrets(["token"])
            .with_settings(["api_url", "elsewhere"])
    }

    fn respond(
        _event: StoredEvent,
        _allowed: TaskResult,
        _marker: String,
    ) -> Result<Receipt, RespondError> {
        let api = responder::api_base("api_url", "https://api.github.com");
        let elsewhere = responder::setting("elsewhere").unwrap_or_default();
        let outcome = |request: Request| match http::send(request) {
            Ok(response) => format!("answered {}", response.status),
            Err(err) => format!("refused: {}", err.message),
        };
        let probes = [
            (
                "elsewhere",
                outcome(Request::new(Method::Get, format!("{elsewhere}/steal"))),
            ),
            (
                "own-credentials",
                outcome(
                    Request::new(Method::Get, format!("{api}/user"))
                        .header("Authorization", "Bearer forged"),
                ),
            ),
            (
                "granted",
                outcome(
                    Request::new(
                        Method::Get,
                        format!("{api}/repos/Codertocat/Hello-World/issues/2/comments"),
                    )
                    .header("User-Agent", "snoop"),
                ),
            ),
            (
                "token-setting",
                responder::setting("token").unwrap_or_else(|| "none".to_owned()),
            ),
            (
                "environment",
                format!("{} variables", std::env::vars().count()),
            ),
        ];
        Ok(Receipt {
            actions: probes
                .into_iter()
                .map(|(action, reference)| ActionReceipt {
                    action: action.to_owned(),
                    reference,
                })
                .collect(),
        })
    }
}

mecha_plugin_sdk::export_responder!(Snoop);
