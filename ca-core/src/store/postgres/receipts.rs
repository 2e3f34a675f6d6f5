//! Receipts of the State Corporation counter on PostgreSQL: numbered within the year by
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING` in the transaction that stores them (under the
//! audit lock, and the row lock on the year orders two counters anyway).

use postgres::GenericClient;

use super::pool::Tx;
use super::{append, chain_head, now, Context};
use crate::ra::application::ApplicationNumber;
use crate::ra::receipt::{Receipt, ReceiptDetails, ReceiptNumber};
use crate::store::StoreError;

/// The next receipt number of `year`.
pub(super) fn next_number(tx: &mut Tx<'_>, year: i32) -> Result<ReceiptNumber, StoreError> {
    let sequence: i64 = tx
        .query_one(
            "INSERT INTO receipt_numbers (year, last) VALUES ($1, 1)
             ON CONFLICT (year) DO UPDATE SET last = receipt_numbers.last + 1 RETURNING last",
            &[&i64::from(year)],
        )
        .and_then(|r| r.try_get(0))
        .context("allocating a receipt number")?;
    Ok(ReceiptNumber::new(year, u64::try_from(sequence).unwrap_or_default()))
}

/// Store receipt `number`, audit it and queue it to the applicant's address.
pub(super) fn store(
    tx: &mut Tx<'_>,
    number: ReceiptNumber,
    details: &ReceiptDetails,
    application: Option<&ApplicationNumber>,
) -> Result<Receipt, StoreError> {
    let receipt = Receipt { number, application: application.cloned(), details: details.clone() };
    let content =
        serde_json::to_string(&receipt).map_err(|e| StoreError::Database(format!("encoding a receipt: {e}")))?;
    let at = details.issued_at.unix_timestamp();
    tx.execute(
        "INSERT INTO receipts (number, kind, application, iin, issued_at, content) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &receipt.number.as_str(),
            &details.kind.name(),
            &application.map(ApplicationNumber::as_str),
            &details.iin.as_string(),
            &at,
            &content,
        ],
    )
    .with_context(|| format!("storing receipt {}", receipt.number))?;
    if let Some(to) = &details.email {
        let notice = receipt.notice(to);
        tx.execute(
            "INSERT INTO outbox (application, recipient, subject, body, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
            &[&application.map(ApplicationNumber::as_str), &notice.to, &notice.subject, &notice.body, &at],
        )
        .with_context(|| format!("queueing receipt {}", receipt.number))?;
    }
    let audit = receipt.audit_event();
    let now = now()?;
    let mut head = chain_head(tx)?;
    append(tx, &mut head, &now, &audit)?;
    Ok(receipt)
}

/// A receipt by number.
pub(super) fn load(client: &mut impl GenericClient, number: &ReceiptNumber) -> Result<Option<Receipt>, StoreError> {
    let content: Option<String> = client
        .query_opt("SELECT content FROM receipts WHERE number = $1", &[&number.as_str()])
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .with_context(|| format!("reading receipt {number}"))?;
    content
        .map(|c| serde_json::from_str(&c).map_err(|e| StoreError::Corrupt(format!("receipts: {number}: {e}"))))
        .transpose()
}
