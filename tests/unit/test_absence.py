"""Out-of-office phrases: present and future absence is caught, past absence is not."""

from __future__ import annotations

import pytest

from qa_mailer.answer.absence import absence_phrase


@pytest.mark.parametrize(
    "text",
    [
        "I'm on vacation until Monday.",
        "I AM OUT OF THE OFFICE and will reply upon my return.",
        "Ще отсъствам до 10 декември.",
        "Odsutna sam do ponedjeljka.",
        "Biću odsutan do ponedeljka.",
        "Бићу одсутна до понедељка.",
        "YILLIK İZİNDEYİM.",
        "Нахожусь в отпуске до понедельника.",
    ],
)
def test_absence_is_recognised(text: str) -> None:
    assert absence_phrase(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "I was away, sorry for the delay. 1. The members choose the manager.",
        "I was on vacation last week; here are my answers.",
        "Bio sam na godišnjem odmoru, oprostite na kašnjenju.",
        "Bila sam odsutna, izvinite.",
        "Бях в отпуск, извинете за забавянето.",
        "İzindeydim, gecikme için özür dilerim.",
        "Был в отпуске, извините за задержку.",
        "The office of the cluster manager is out of scope here.",
    ],
)
def test_a_past_absence_is_not_an_out_of_office_notice(text: str) -> None:
    assert absence_phrase(text) is None
