//! What every page shows: the header, the language switch, the skip link, the footer, and the
//! signing client's refusals (shown next to the button that asked for a signature).

use http_common::pages::Lang;

pub struct Common {
    pub site: &'static str,
    pub skip_to_content: &'static str,
    pub language: &'static str,
    pub home: &'static str,
    pub login: &'static str,
    pub register: &'static str,
    pub logout: &'static str,
    pub signed_in_as: &'static str,
    pub main_menu: &'static str,
    pub footer: &'static str,
    pub required: &'static str,
    /// Shown next to a signing button when the client is not running.
    pub signer_unreachable: &'static str,
    pub signer_canceled: &'static str,
    pub signer_no_key: &'static str,
    pub signer_failed: &'static str,
    pub signer_working: &'static str,
}

pub static RU: Common = Common {
    site: "Портал «Электронного правительства» Республики Казахстан",
    skip_to_content: "Перейти к содержимому",
    language: "Язык",
    home: "Главная",
    login: "Вход",
    register: "Регистрация",
    logout: "Выход",
    signed_in_as: "Вы вошли как",
    main_menu: "Главное меню",
    footer: "© Портал «Электронного правительства» Республики Казахстан",
    required: "обязательное поле",
    signer_unreachable: "Программа для подписания не запущена или недоступна. Запустите её и повторите.",
    signer_canceled: "Подписание отменено.",
    signer_no_key: "В хранилище нет подходящего ключа ЭЦП.",
    signer_failed: "Не удалось подписать: программа для подписания вернула ошибку.",
    signer_working: "Подтвердите подписание в программе для подписания…",
};

pub static KK: Common = Common {
    site: "Қазақстан Республикасының «Электрондық үкіметінің» порталы",
    skip_to_content: "Мазмұнға өту",
    language: "Тіл",
    home: "Басты бет",
    login: "Кіру",
    register: "Тіркелу",
    logout: "Шығу",
    signed_in_as: "Сіз кірдіңіз:",
    main_menu: "Басты мәзір",
    footer: "© Қазақстан Республикасының «Электрондық үкіметінің» порталы",
    required: "міндетті өріс",
    signer_unreachable: "Қол қою бағдарламасы іске қосылмаған немесе қолжетімсіз. Оны іске қосып, қайталаңыз.",
    signer_canceled: "Қол қою тоқтатылды.",
    signer_no_key: "Қоймада жарамды ЭЦҚ кілті жоқ.",
    signer_failed: "Қол қою мүмкін болмады: қол қою бағдарламасы қате қайтарды.",
    signer_working: "Қол қою бағдарламасында қол қоюды растаңыз…",
};

pub fn texts(lang: Lang) -> &'static Common {
    super::pick(lang, &RU, &KK)
}
