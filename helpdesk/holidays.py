"""Public holidays by region, from the chinesecalendar package (pure data, no database)."""

from __future__ import annotations

from datetime import date

# chinesecalendar names its holidays in English; a calendar in our Chinese-first admin shows these.
CN_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


def statutory_dates(region: str) -> dict[date, tuple[bool, str]]:
    """{date: (is_working, name)}: holidays (closed) and make-up workdays (working) of `region`.

    Only the years the installed chinesecalendar release knows; later years must be entered
    by hand until the package is upgraded.
    """
    if region != "CN":
        return {}
    from chinese_calendar import constants

    dates = {day: (False, CN_NAMES.get(name, name)) for day, name in constants.holidays.items()}
    dates.update({day: (True, f"{CN_NAMES.get(name, name)}调休") for day, name in constants.workdays.items()})
    return dates
