from tests.conftest import code_in

PHONE = "+14155552671"


def test_it_sends_and_approves_a_code(api, outbox):
    sent = api.post("/api/v1/verifications", {"to": PHONE}, format="json")
    assert sent.status_code == 201, sent.json()
    body = sent.json()
    assert body["to"] == "+1415****2671"
    assert body["status"] == "pending"
    code = code_in(outbox[0])
    checked = api.post(f"/api/v1/verifications/{body['id']}/check", {"code": code}, format="json")
    assert checked.status_code == 200
    assert checked.json()["verified"] is True
    assert checked.json()["status"] == "approved"


def test_the_guide_endpoints_round_trip(api, outbox):
    sent = api.post("/integrations/custom-feature/send-otp-sms", {"toNumber": PHONE}, format="json")
    assert sent.status_code == 200, sent.json()
    system_otp = sent.json()["systemOtp"]
    verified = api.post(
        "/integrations/custom-feature/verify-user-otp",
        {"systemOtp": system_otp, "userOtp": code_in(outbox[0])},
        format="json",
    )
    assert verified.json() == {
        "success": True,
        "verified": True,
        "status": "approved",
        "attemptsLeft": 0,
    }
