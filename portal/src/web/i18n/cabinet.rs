//! The cabinet's words: Russian as the documents word them, Kazakh second. The domain's
//! messages (a wrong code, a number bound elsewhere) come from the domain, word for word.

use http_common::pages::Lang;

/// Every label of the cabinet's pages.
pub struct CabinetText {
    pub cabinet: &'static str,
    pub nav_label: &'static str,
    pub profile: &'static str,
    pub phone: &'static str,
    pub sessions: &'static str,
    pub journal: &'static str,
    pub documents: &'static str,
    pub login: &'static str,
    pub kind: &'static str,
    pub individual: &'static str,
    pub legal_entity: &'static str,
    pub iin: &'static str,
    pub bin: &'static str,
    pub email: &'static str,
    pub registered: &'static str,
    pub by_counter: &'static str,
    pub by_signature: &'static str,
    pub bound_phone: &'static str,
    pub no_phone: &'static str,
    pub phone_number: &'static str,
    pub phone_hint: &'static str,
    pub get_code: &'static str,
    pub code: &'static str,
    pub code_hint: &'static str,
    pub code_expires: &'static str,
    pub sign_and_bind: &'static str,
    pub sign_hint: &'static str,
    pub another_number: &'static str,
    pub phone_history: &'static str,
    pub channel: &'static str,
    pub bound_at: &'static str,
    pub ended_at: &'static str,
    pub current: &'static str,
    pub this_session: &'static str,
    pub method: &'static str,
    pub opened_at: &'static str,
    pub last_seen: &'static str,
    pub expires: &'static str,
    pub address: &'static str,
    pub browser: &'static str,
    pub end_session: &'static str,
    pub session_ended: &'static str,
    pub no_sessions: &'static str,
    pub logins: &'static str,
    pub failures: &'static str,
    pub no_failures: &'static str,
    pub reason: &'static str,
    pub when: &'static str,
    pub state: &'static str,
    pub open: &'static str,
    pub ended: &'static str,
    pub logout: &'static str,
    pub back: &'static str,
}

pub static RU: CabinetText = CabinetText {
    cabinet: "Личный кабинет",
    nav_label: "Разделы личного кабинета",
    profile: "Профиль",
    phone: "Номер телефона",
    sessions: "Сеансы",
    journal: "Журнал входов",
    documents: "Цифровые документы",
    login: "Логин",
    kind: "Тип учетной записи",
    individual: "Физическое лицо",
    legal_entity: "Юридическое лицо",
    iin: "ИИН",
    bin: "БИН",
    email: "Электронная почта",
    registered: "Зарегистрирован",
    by_counter: "в ЦОН",
    by_signature: "по ЭЦП",
    bound_phone: "Привязанный номер",
    no_phone: "Номер телефона не привязан",
    phone_number: "Номер мобильного телефона",
    phone_hint: "Например: +7 701 234 56 78",
    get_code: "Получить проверочный код",
    code: "Проверочный код из SMS",
    code_hint: "6 цифр",
    code_expires: "Код действует до",
    sign_and_bind: "Подписать ЭЦП и привязать номер",
    sign_hint: "Запрос на привязку номера подписывается ключом ЭЦП для подписи (RSA256_… / ECDSA256_…) через программу подписания.",
    another_number: "Указать другой номер",
    phone_history: "История номеров",
    channel: "Канал",
    bound_at: "Привязан",
    ended_at: "Отвязан",
    current: "Текущий",
    this_session: "Текущий сеанс",
    method: "Способ входа",
    opened_at: "Начало",
    last_seen: "Последнее действие",
    expires: "Истекает",
    address: "IP-адрес",
    browser: "Браузер",
    end_session: "Завершить сеанс",
    session_ended: "Сеанс завершен",
    no_sessions: "Открытых сеансов нет",
    logins: "Входы",
    failures: "Неудачные попытки входа",
    no_failures: "Неудачных попыток входа не было",
    reason: "Причина",
    when: "Дата и время",
    state: "Состояние",
    open: "Открыт",
    ended: "Завершен",
    logout: "Выйти",
    back: "Назад",
};

pub static KK: CabinetText = CabinetText {
    cabinet: "Жеке кабинет",
    nav_label: "Жеке кабинет бөлімдері",
    profile: "Профиль",
    phone: "Телефон нөмірі",
    sessions: "Сеанстар",
    journal: "Кіру журналы",
    documents: "Цифрлық құжаттар",
    login: "Логин",
    kind: "Есептік жазба түрі",
    individual: "Жеке тұлға",
    legal_entity: "Заңды тұлға",
    iin: "ЖСН",
    bin: "БСН",
    email: "Электрондық пошта",
    registered: "Тіркелген",
    by_counter: "ХҚКО-да",
    by_signature: "ЭЦҚ арқылы",
    bound_phone: "Байланыстырылған нөмір",
    no_phone: "Телефон нөмірі байланыстырылмаған",
    phone_number: "Ұялы телефон нөмірі",
    phone_hint: "Мысалы: +7 701 234 56 78",
    get_code: "Тексеру кодын алу",
    code: "SMS-тегі тексеру коды",
    code_hint: "6 цифр",
    code_expires: "Код жарамды уақыты",
    sign_and_bind: "ЭЦҚ-мен қол қойып, нөмірді байланыстыру",
    sign_hint: "Нөмірді байланыстыру сұрауына қол қою бағдарламасы арқылы қол қою кілтімен (RSA256_… / ECDSA256_…) қол қойылады.",
    another_number: "Басқа нөмір көрсету",
    phone_history: "Нөмірлер тарихы",
    channel: "Арна",
    bound_at: "Байланыстырылды",
    ended_at: "Ажыратылды",
    current: "Ағымдағы",
    this_session: "Ағымдағы сеанс",
    method: "Кіру тәсілі",
    opened_at: "Басталуы",
    last_seen: "Соңғы әрекет",
    expires: "Аяқталады",
    address: "IP-мекенжай",
    browser: "Браузер",
    end_session: "Сеансты аяқтау",
    session_ended: "Сеанс аяқталды",
    no_sessions: "Ашық сеанстар жоқ",
    logins: "Кірулер",
    failures: "Сәтсіз кіру әрекеттері",
    no_failures: "Сәтсіз кіру әрекеттері болған жоқ",
    reason: "Себебі",
    when: "Күні мен уақыты",
    state: "Күйі",
    open: "Ашық",
    ended: "Аяқталған",
    logout: "Шығу",
    back: "Артқа",
};

/// The catalog of `lang`.
pub fn text(lang: Lang) -> &'static CabinetText {
    super::pick(lang, &RU, &KK)
}

/// A login method as people say it.
pub fn method(lang: Lang, method: &str) -> String {
    let (ru, kk) = match method {
        "password" => ("Логин и пароль", "Логин және құпиясөз"),
        "eds" => ("ЭЦП", "ЭЦҚ"),
        "otp" => ("Одноразовый пароль", "Бір реттік құпиясөз"),
        "recovery-eds" => ("Восстановление пароля по ЭЦП", "ЭЦҚ арқылы құпиясөзді қалпына келтіру"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::Ru => ru,
        Lang::Kk => kk,
    }
    .to_owned()
}

/// Why a login failed, as people say it (the journal keeps the machine word).
pub fn failure(lang: Lang, reason: &str) -> String {
    let (ru, kk) = match reason {
        "wrong-password" => ("Неверный пароль", "Құпиясөз қате"),
        "unknown-account" => ("Учетная запись не найдена", "Есептік жазба табылмады"),
        "locked" | "password-login-locked" => ("Вход по паролю заблокирован", "Құпиясөзбен кіру бұғатталған"),
        "wrong-otp" | "otp-invalid" => ("Неверный одноразовый пароль", "Бір реттік құпиясөз қате"),
        "account-blocked" => ("Учетная запись заблокирована", "Есептік жазба бұғатталған"),
        _ if reason.starts_with("signature") || reason.starts_with("certificate") => {
            ("Подпись не прошла проверку", "Қолтаңба тексеруден өтпеді")
        }
        other => return other.to_owned(),
    };
    match lang {
        Lang::Ru => ru,
        Lang::Kk => kk,
    }
    .to_owned()
}

/// A binding channel as people say it.
pub fn channel(lang: Lang, channel: &str) -> String {
    let (ru, kk) = match channel {
        "portal" => ("Портал", "Портал"),
        "mobile-app" => ("Мобильное приложение", "Мобильді қосымша"),
        "bank-app" => ("Приложение банка", "Банк қосымшасы"),
        "counter" => ("ЦОН", "ХҚКО"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::Ru => ru,
        Lang::Kk => kk,
    }
    .to_owned()
}
