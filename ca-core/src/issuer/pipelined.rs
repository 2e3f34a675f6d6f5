//! Three-stage issuance: reserve (store) → lint and sign (key) → record (store), with different
//! batches in different stages at once, so the key never waits for a durable commit.

use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use super::{IssuanceRequest, IssueError, IssuedCertificate, Issuer};

pub(super) fn run<B>(
    issuer: &Issuer<'_>,
    batches: B,
    mut deliver: impl FnMut(Vec<IssuedCertificate>) + Send,
) -> Result<usize, IssueError>
where
    B: Iterator<Item = Vec<IssuanceRequest>> + Send,
{
    let pipeline = issuer.pipeline();
    let first_error: Mutex<Option<IssueError>> = Mutex::new(None);
    let fail = |e: IssueError| {
        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    };
    let (to_sign, reserved) = sync_channel(1);
    let (to_record, signed) = sync_channel::<Vec<IssuedCertificate>>(1);
    let mut issued = 0usize;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Owned here, so the signing stage sees the end of the stream when this stage ends.
            let to_sign = to_sign;
            for batch in batches {
                let step = issuer.prepare(&batch).and_then(|prepared| {
                    pipeline.reserve(&prepared)?;
                    Ok(prepared)
                });
                match step {
                    Ok(prepared) => {
                        if to_sign.send(prepared).is_err() {
                            return; // a later stage stopped
                        }
                    }
                    Err(e) => return fail(e),
                }
            }
        });
        let recorder = scope.spawn(|| {
            let mut count = 0usize;
            for batch in signed {
                if let Err(e) = pipeline.record(&batch) {
                    fail(e);
                    return count;
                }
                count += batch.len();
                deliver(batch);
            }
            count
        });
        let to_record = to_record;
        for prepared in reserved {
            match pipeline.lint_and_sign(prepared) {
                Ok(batch) => {
                    if to_record.send(batch).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    fail(e);
                    break;
                }
            }
        }
        drop(to_record);
        issued = recorder.join().unwrap_or(0);
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(issued),
    }
}
