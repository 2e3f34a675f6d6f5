//! The notices the applicant receives by email at each step (regulation 004): the application
//! form with its unique number at registration ("process 6"), every refusal with its exact text
//! (processes 3, 5, 8 and 10), and the issuance with the install link ("process 11"). Each is
//! queued in the same transaction as the step that causes it.

use super::application::{Application, ApplicationKind};
use super::store::NewMessage;
use crate::identity::{Bin, Iin};

const SIGNATURE: &str = "Национальный удостоверяющий центр Республики Казахстан";

/// The application form sent at registration. `{number}` is filled in by the store, which
/// allocates the number in the same transaction. `status_link`: where the applicant follows
/// his application.
pub fn registration(
    to: &str,
    kind: ApplicationKind,
    iin: &Iin,
    bin: Option<&Bin>,
    status_link: Option<&str>,
) -> NewMessage {
    let what = match kind {
        ApplicationKind::NewIndividual | ApplicationKind::NewEmployee | ApplicationKind::Card => {
            "выпуск регистрационных свидетельств"
        }
        ApplicationKind::Repeat => "повторный выпуск регистрационных свидетельств",
        ApplicationKind::RevokeSigned | ApplicationKind::RevokeCounter => "отзыв регистрационных свидетельств",
    };
    let next = match kind {
        ApplicationKind::NewIndividual | ApplicationKind::NewEmployee => {
            "Предоставьте это заявление с уникальным номером Услугодателю вместе с документом, \
             удостоверяющим личность."
        }
        _ => "Заявка будет исполнена без вашего дальнейшего участия; о результате вы получите уведомление.",
    };
    let mut body =
        format!("Здравствуйте!\n\nЗаявление на {what}\nУникальный номер заявления: {{number}}\nИИН: {iin}\n");
    if let Some(bin) = bin {
        body.push_str(&format!("БИН: {bin}\n"));
    }
    if kind == ApplicationKind::NewEmployee {
        body.push_str("Заявка сотрудника юридического лица подтверждается ЭЦП первого руководителя.\n");
    }
    body.push_str(&format!("\n{next}\n"));
    if let Some(link) = status_link {
        body.push_str(&format!("\nСостояние заявки: {link}\n"));
    }
    body.push_str(&format!("\n{SIGNATURE}\n"));
    NewMessage {
        to: to.to_owned(), subject: "Заявление № {number} зарегистрировано".into(), body
    }
}

/// A refusal, with the refusal's text exactly as stored on the application. `number` may be
/// `{number}` at registration (filled in by the store).
pub fn refusal(to: &str, number: &str, message: &str) -> NewMessage {
    NewMessage {
        to: to.to_owned(),
        subject: format!("Отказ в оказании услуги (заявка {number})"),
        body: format!(
            "Здравствуйте!\n\nПо заявке {number} в оказании государственной услуги отказано.\n\n\
             Причина:\n{message}\n\n{SIGNATURE}\n"
        ),
    }
}

/// The refusal notice of an application, when it has an address.
pub fn refusal_of(a: &Application, message: &str) -> Option<NewMessage> {
    a.email.as_deref().map(|to| refusal(to, a.number.as_str(), message))
}

/// Whether `email` may be put on an application: one address, no spaces or control characters.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_on_the_application_is_one_plain_address() {
        for good in ["a@example.kz", "first.last+tag@mail.example.test"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "@example.kz",
            "a@",
            "a@kz",
            "a@.kz",
            "a@kz.",
            "a b@example.kz",
            "a@b@example.kz",
            "a@example.kz\r\nBcc: x@example.kz",
            "<a@example.kz>",
            "a@example.kz, b@example.kz",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_notice_carries_the_text_on_a_line_of_its_own() {
        let text = "Отказ оператора: документы не соответствуют";
        let m = refusal("a@example.kz", "A-2026-000001", text);
        assert!(m.subject.contains("A-2026-000001"));
        assert!(m.body.lines().any(|l| l == text), "{}", m.body);
        let form = registration(
            "a@example.kz",
            ApplicationKind::NewIndividual,
            &Iin::with_check_digit("88010130001").unwrap(),
            None,
            Some("https://x/s"),
        );
        assert!(form.body.contains("Уникальный номер заявления: {number}") && form.subject.contains("{number}"));
        assert!(form.body.contains("https://x/s"));
    }
}
