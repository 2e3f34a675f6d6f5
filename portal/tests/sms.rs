//! SMS transports against loopback servers: the HTTP gateway (a failure retried with the same
//! message id; the sender killed between the gateway's acceptance and the mark sends again
//! with the same id, and never again once marked) and SMPP 3.4 against a loopback SMSC built
//! on the same PDU codec (bind, UCS-2 text, a refused submission retried, unbind).

mod common;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use common::TestPortal;
use futures_util::{SinkExt, StreamExt};
use portal::notify::sms::gateway::HttpGateway;
use portal::notify::sms::smpp::SmppGateway;
use portal::notify::sms::{DeliveryReport, SmsDispatcher, FAILPOINT_ACCEPTED};
use portal::store::phone::NewSms;
use rusmpp::pdus::{BindTransmitterResp, SubmitSmResp};
use rusmpp::tlvs::TlvValue;
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::COctetString;
use rusmpp::values::DataCoding;
use rusmpp::{Command, CommandStatus, Pdu};
use time::Duration;
use tokio_util::codec::Framed;
use zeroize::Zeroizing;

/// What the loopback gateway received: (id, to, text, authorization).
#[derive(Default)]
struct Gateway {
    received: Mutex<Vec<(String, String, String, String)>>,
    fail_next: Mutex<u32>,
}

async fn gateway_send(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> axum::response::Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    gw.received.lock().unwrap().push((field("id"), field("to"), field("text"), auth));
    let mut fail = gw.fail_next.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    Json(serde_json::json!({ "id": format!("gw-{}", field("id")) })).into_response()
}

fn start_gateway(t: &TestPortal) -> (Arc<Gateway>, String) {
    let gw = Arc::new(Gateway::default());
    let app = axum::Router::new().route("/sms", axum::routing::post(gateway_send)).with_state(gw.clone());
    let listener = t.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    t.runtime.spawn(async move { axum::serve(listener, app).await });
    (gw, url)
}

fn queue(t: &TestPortal, id: &str, to: &str, text: &str) {
    let sms = NewSms {
        message_id: id.into(),
        to: to.into(),
        body: text.into(),
        purpose: "phone-notice".into(),
        login: None,
        expires_at: None,
    };
    t.portal.store.queue_sms(&sms, ca_core::clock::Clock::now(t.clock.as_ref())).unwrap();
}

#[test]
fn the_http_gateway_gets_a_failed_message_again_with_the_same_id_and_a_sent_one_never() {
    let t = TestPortal::start();
    let (gw, url) = start_gateway(&t);
    let transport =
        HttpGateway::new(&url, Zeroizing::new("gateway-token".into()), "eGov", std::time::Duration::from_secs(5));
    let sender = SmsDispatcher::new(t.portal.store.clone(), t.clock.clone(), Arc::new(transport));
    *gw.fail_next.lock().unwrap() = 2;
    queue(&t, "m-1", "+77010009001", "Ваш номер отвязан");
    assert_eq!(sender.deliver_pending().unwrap(), DeliveryReport { sent: 0, failed: 1, expired: 0 });
    assert_eq!(sender.deliver_pending().unwrap(), DeliveryReport::default(), "not before its retry time");
    t.clock.advance(Duration::seconds(11));
    assert_eq!(sender.deliver_pending().unwrap().failed, 1);
    t.clock.advance(Duration::seconds(21));
    assert_eq!(sender.deliver_pending().unwrap().sent, 1);
    t.clock.advance(Duration::hours(1));
    assert_eq!(sender.deliver_pending().unwrap(), DeliveryReport::default(), "sent once, never again");
    let received = gw.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    for (id, to, text, auth) in &received {
        assert_eq!(
            (id.as_str(), to.as_str(), text.as_str(), auth.as_str()),
            ("m-1", "+77010009001", "Ваш номер отвязан", "Bearer gateway-token")
        );
    }
    let record = &t.portal.store.sms_outbox(10).unwrap()[0];
    assert_eq!((record.state.as_str(), record.attempts), ("sent", 3));
    // A code whose time ran out before the gateway took it is dropped, not sent late.
    let sms = NewSms {
        message_id: "m-2".into(),
        to: "+77010009002".into(),
        body: "Код: 123456".into(),
        purpose: "phone-code".into(),
        login: None,
        expires_at: Some(ca_core::clock::Clock::now(t.clock.as_ref()) + Duration::minutes(5)),
    };
    t.portal.store.queue_sms(&sms, ca_core::clock::Clock::now(t.clock.as_ref())).unwrap();
    *gw.fail_next.lock().unwrap() = 100;
    assert_eq!(sender.deliver_pending().unwrap().failed, 1);
    t.clock.advance(Duration::minutes(6));
    assert_eq!(sender.deliver_pending().unwrap().expired, 1);
    assert_eq!(t.portal.store.sms_outbox(10).unwrap()[1].state, "expired");
}

#[test]
fn the_sender_killed_between_acceptance_and_mark_resends_with_the_same_id_then_never_again() {
    let t = TestPortal::start();
    let (gw, url) = start_gateway(&t);
    let config = t.dir.path().join("sender.toml");
    std::fs::write(
        &config,
        format!(
            "store = {:?}\n[trust]\nanchors = [{:?}]\n[registry]\ncsv = {:?}\n[phone.sms]\nhttp = {{ url = {url:?}, token_env = \"SMS_GATEWAY_TOKEN\" }}\n",
            t.dir.path().join("portal.db"),
            t.root_pem,
            t.dir.path().join("registry.csv"),
        ),
    )
    .unwrap();
    queue(&t, "m-crash", "+77010009003", "Уведомление");
    let run = |failpoint: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"));
        cmd.args(["sms-sender", "--once", "--lease-seconds", "0", "--config", config.to_str().unwrap()])
            .env("SMS_GATEWAY_TOKEN", "gateway-token")
            .env_remove("CA_FAILPOINT");
        if let Some(point) = failpoint {
            cmd.env("CA_FAILPOINT", point);
        }
        cmd.output().unwrap()
    };
    let killed = run(Some(FAILPOINT_ACCEPTED));
    assert_eq!(
        killed.status.code(),
        Some(ca_core::failpoint::EXIT_CODE),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    assert_eq!(gw.received.lock().unwrap().len(), 1, "the gateway accepted it before the kill");
    assert_eq!(t.portal.store.sms_outbox(10).unwrap()[0].state, "pending", "not marked");
    let again = run(None);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let report: DeliveryReport = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report.sent, 1);
    let after = run(None);
    assert_eq!(serde_json::from_slice::<DeliveryReport>(&after.stdout).unwrap(), DeliveryReport::default());
    let ids: Vec<String> = gw.received.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ids, ["m-crash", "m-crash"], "resent once with the same id, never after the mark");
    assert_eq!(t.portal.store.sms_outbox(10).unwrap()[0].state, "sent");
}

/// What the loopback SMSC saw: (system_id, password, destination, data coding, text).
type Submitted = Arc<Mutex<Vec<(String, String, String, DataCoding, String)>>>;

async fn smsc_session(stream: tokio::net::TcpStream, seen: Submitted, refuse_next: Arc<Mutex<u32>>) {
    let mut framed = Framed::new(stream, CommandCodec::new());
    let mut credentials = (String::new(), String::new());
    while let Some(Ok(command)) = framed.next().await {
        let seq = command.sequence_number();
        let answer = match command.pdu() {
            Some(Pdu::BindTransmitter(bind)) => {
                credentials = (bind.system_id.to_string(), bind.password.to_string());
                Command::new(
                    CommandStatus::EsmeRok,
                    seq,
                    BindTransmitterResp::new(COctetString::from_str("SMSC").unwrap(), None),
                )
            }
            Some(Pdu::SubmitSm(submit)) => {
                let mut bytes = submit.short_message().as_ref().to_vec();
                for tlv in submit.tlvs() {
                    if let Some(TlvValue::MessagePayload(p)) = tlv.value() {
                        bytes = p.value.as_ref().to_vec();
                    }
                }
                let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                let text = String::from_utf16(&units).unwrap();
                seen.lock().unwrap().push((
                    credentials.0.clone(),
                    credentials.1.clone(),
                    submit.destination_addr.to_string(),
                    submit.data_coding,
                    text,
                ));
                let mut refuse = refuse_next.lock().unwrap();
                if *refuse > 0 {
                    *refuse -= 1;
                    Command::new(
                        CommandStatus::EsmeRthrottled,
                        seq,
                        SubmitSmResp::new(COctetString::from_str("x").unwrap(), vec![]),
                    )
                } else {
                    Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        SubmitSmResp::new(COctetString::from_str("smsc-1").unwrap(), vec![]),
                    )
                }
            }
            Some(Pdu::Unbind) => {
                let _ = framed.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp)).await;
                return;
            }
            _ => Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack),
        };
        if framed.send(answer).await.is_err() {
            return;
        }
    }
}

#[test]
fn smpp_delivers_ucs2_text_to_a_loopback_smsc_and_a_refused_submission_is_retried() {
    let t = TestPortal::start();
    let seen: Submitted = Arc::default();
    let refuse_next = Arc::new(Mutex::new(1u32));
    let listener = t.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    {
        let (seen, refuse_next) = (seen.clone(), refuse_next.clone());
        t.runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(smsc_session(stream, seen.clone(), refuse_next.clone()));
            }
        });
    }
    let transport =
        SmppGateway::new(&address, "egov", Zeroizing::new("secret".into()), "eGov", std::time::Duration::from_secs(5))
            .unwrap();
    let sender = SmsDispatcher::new(t.portal.store.clone(), t.clock.clone(), Arc::new(transport));
    let short = "Код для привязки номера к Порталу eGov: 123456 (действует 5 мин.)";
    let long = "Ваш номер отвязан от учетной записи Портала eGov: привязан другой номер. Если это сделали не Вы, позвоните 1414";
    queue(&t, "s-1", "+77010009004", short);
    queue(&t, "s-2", "+77010009005", long);
    let report = sender.deliver_pending().unwrap();
    assert_eq!((report.sent, report.failed), (1, 1), "the SMSC throttled the first submission");
    t.clock.advance(Duration::seconds(11));
    assert_eq!(sender.deliver_pending().unwrap().sent, 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (system_id, password, _, coding, _) in &seen {
        assert_eq!((system_id.as_str(), password.as_str(), *coding), ("egov", "secret", DataCoding::Ucs2));
    }
    let delivered: Vec<(&str, &str)> = seen[1..].iter().map(|s| (s.2.as_str(), s.4.as_str())).collect();
    assert!(delivered.contains(&("77010009005", long)), "{delivered:?}");
    assert!(seen.iter().any(|s| s.2 == "77010009004" && s.4 == short));
    assert!(t.portal.store.sms_outbox(10).unwrap().iter().all(|m| m.state == "sent"));
}
