//! The SMPP 3.4 transport (the protocol of mobile operators' SMS centres), through the
//! `rusmpp` PDU codec: for each message a session binds as a transmitter, submits the message
//! (UCS-2, as Kazakh and Russian texts need; `message_payload` when it is longer than one
//! short message) and unbinds. The SMSC's `submit_sm_resp` with status 0 is acceptance; its
//! message id is kept as the gateway's reference. SMPP has no field for the client's own id,
//! so a repeat after a crash between acceptance and the mark reaches the SMSC as a new
//! submission (at least once, as the outbox promises).

use std::str::FromStr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{BindTransmitter, SubmitSm};
use rusmpp::tlvs::MessageSubmissionRequestTlvValue;
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{DataCoding, InterfaceVersion, MessagePayload, Npi, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio_util::codec::Framed;
use zeroize::Zeroizing;

use super::{OutgoingSms, SmsTransport};

/// The most octets of `short_message` in one SMS.
const SHORT_MESSAGE_MAX: usize = 140;

pub struct SmppGateway {
    address: String,
    system_id: String,
    password: Zeroizing<String>,
    source_addr: String,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

impl SmppGateway {
    pub fn new(
        address: &str,
        system_id: &str,
        password: Zeroizing<String>,
        source_addr: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the SMPP runtime: {e}"))?;
        Ok(Self {
            address: address.to_owned(),
            system_id: system_id.to_owned(),
            password,
            source_addr: source_addr.to_owned(),
            timeout,
            runtime,
        })
    }

    async fn session(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String> {
        let stream =
            tokio::net::TcpStream::connect(&self.address).await.map_err(|e| format!("connecting to the SMSC: {e}"))?;
        let mut framed = Framed::new(stream, CommandCodec::new());
        let c = |what: &str, text: &str| -> Result<COctetString<1, 16>, String> {
            COctetString::from_str(text).map_err(|e| format!("{what}: {e}"))
        };
        let bind = BindTransmitter::builder()
            .system_id(c("system_id", &self.system_id)?)
            .password(COctetString::from_str(&self.password).map_err(|e| format!("password: {e}"))?)
            .system_type(COctetString::empty())
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        exchange(&mut framed, Command::new(CommandStatus::EsmeRok, 1, bind)).await?;

        let ucs2: Vec<u8> = sms.text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let mut submit = SubmitSm::builder()
            .source_addr_ton(Ton::Alphanumeric)
            .source_addr_npi(Npi::Unknown)
            .source_addr(COctetString::from_str(&self.source_addr).map_err(|e| format!("source address: {e}"))?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(
                COctetString::from_str(sms.to.trim_start_matches('+')).map_err(|e| format!("destination: {e}"))?,
            )
            .registered_delivery(RegisteredDelivery::default())
            .data_coding(DataCoding::Ucs2);
        if ucs2.len() <= SHORT_MESSAGE_MAX {
            submit = submit.short_message(OctetString::from_vec(ucs2).map_err(|e| format!("short_message: {e}"))?);
        } else {
            let payload = MessagePayload::new(AnyOctetString::from_vec(ucs2));
            submit = submit.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(payload));
        }
        let answer = exchange(&mut framed, Command::new(CommandStatus::EsmeRok, 2, submit.build())).await?;
        let reference = match answer.pdu() {
            Some(Pdu::SubmitSmResp(resp)) => Some(resp.message_id().to_string()),
            _ => None,
        };
        // Accepted: a failed unbind changes nothing about that.
        let _ = exchange(&mut framed, Command::new(CommandStatus::EsmeRok, 3, Pdu::Unbind)).await;
        Ok(reference)
    }
}

/// Send `command` and wait for the response with its sequence number; a non-zero status is
/// an error.
async fn exchange(
    framed: &mut Framed<tokio::net::TcpStream, CommandCodec>,
    command: Command,
) -> Result<Command, String> {
    let sequence = command.sequence_number();
    let id = command.id();
    framed.send(command).await.map_err(|e| format!("sending {id:?}: {e}"))?;
    while let Some(answer) = framed.next().await {
        let answer = answer.map_err(|e| format!("reading the SMSC's answer to {id:?}: {e}"))?;
        if answer.sequence_number() != sequence {
            continue;
        }
        if answer.status() != CommandStatus::EsmeRok {
            return Err(format!("the SMSC refused {id:?}: {:?}", answer.status()));
        }
        return Ok(answer);
    }
    Err(format!("the SMSC closed the connection before answering {id:?}"))
}

impl SmsTransport for SmppGateway {
    fn send(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String> {
        self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, self.session(sms))
                .await
                .unwrap_or_else(|_| Err(format!("the SMSC did not answer within {} s", self.timeout.as_secs())))
        })
    }
}
