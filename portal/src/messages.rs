//! The messages people see, word for word from document 002 (see REQUIREMENTS.md §2) where
//! the document gives them.

/// Registration succeeded.
pub const REGISTERED: &str =
    "Поздравляем, Вы успешно зарегистрировались на веб-Портале \"Электронного Правительства\" Республики Казахстан.";

/// Life status 9 (died): Условие 1.
pub const DECEASED: &str = "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН (код:9)";

/// The code-less form of the refusal (the user guide, Приложение 2): no record in the registry.
pub const NO_RECORD: &str =
    "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН";

/// On the General Prosecutor's special register (the message ends with the address).
pub const SPECIAL_REGISTER: &str = "Невозможно создать учетную запись по введенному значению ИИН. За разъяснениями необходимо обратиться в Управление Комитета по правовой статистике и специальным учетам Генеральной прокуратуры Республики Казахстан <http://www.pravstat.kz>";

/// Password login is locked for the IIN/BIN.
pub const LOCKED: &str = "Вход по логин-паролю для данного ИИН/БИН временно заблокирован. Вы можете авторизоваться на Портале по ЭЦП, ЭЦП на SIM-карте или по Одноразовому паролю";

/// Unknown user or wrong password (one answer for both).
pub const WRONG_LOGIN: &str = "Ошибка авторизации: введен неверный логин или пароль";

/// The IIN/BIN already has an account (the document gives no wording).
pub const ALREADY_REGISTERED: &str =
    "Учетная запись для данного ИИН/БИН уже зарегистрирована на Портале. Воспользуйтесь входом или восстановлением пароля";

/// The BIN is not in the registry of legal entities (the document gives no wording).
pub const NO_LEGAL_ENTITY: &str =
    "Невозможно создать учетную запись по введенному БИН: юридическое лицо не найдено в Государственной базе данных \"Юридические лица\"";

/// What a recovery by email answers, whether or not anything matched.
pub const RECOVERY_EMAIL_SENT: &str =
    "Если введенные данные совпадают с данными государственных баз, новый пароль отправлен на адрес электронной почты учетной записи";

/// The refusal for IIN exclusion code `code` (1..=9).
///
/// Requirement 6 words codes 1–8 as «(код: N)», Requirement 7 words codes 2–9 as
/// «(код: N - признак исключения ИИН)». Where they overlap (2–8) the later, more specific
/// Requirement 7 is used, so code 1 alone has the short form; code 9 has Requirement 7's form
/// (the digest asks for it), which keeps it apart from life status 9's «(код:9)».
pub fn excluded(code: u8) -> String {
    let head = "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН";
    if code == 1 {
        format!("{head} (код: 1)")
    } else {
        format!("{head} (код: {code} - признак исключения ИИН)")
    }
}
