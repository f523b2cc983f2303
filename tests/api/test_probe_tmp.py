from tests import factories as f
from tests.api.helpers import bearer, snapshot
def test_probe(client, session):
    o = f.org(session)
    u, tok = f.user(session, o)
    session.commit()
    for url in ["/api/v1/lots/99999999999", "/api/v1/lots/99999999999999999999999", "/api/v1/products/3000000000", "/api/v1/events?lot_id=99999999999", "/api/v1/organisations/99999999999999999999/members"]:
        r = client.get(url, headers=bearer(tok))
        print(url, r.status_code, r.text[:200])
    r = client.post("/api/v1/events/sell", headers=bearer(tok), json={"lot_id": 99999999999, "quantity": "1"})
    print(r.status_code, r.text[:200])
    print(len(snapshot(session)))
