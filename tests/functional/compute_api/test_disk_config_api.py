"""OS-DCF:diskConfig: set by an update, shown in the server view, refused when unknown."""

from __future__ import annotations

from compute_api_fixtures import DEMO

from transcell.db import cell_models as cm
from transcell.db.session import cell_session


def test_update_sets_the_disk_config_and_the_view_shows_it(cloud):
    server = cloud.add_instance(cloud.cell2, host="cell2-host1", node="cell2-host1")
    path = f"/servers/{server}"
    assert cloud.get(path, token=DEMO).json["server"]["OS-DCF:diskConfig"] == "MANUAL"
    updated = cloud.put(path, {"server": {"OS-DCF:diskConfig": "AUTO"}}, token=DEMO)
    assert updated.status_int == 200, updated.body
    assert updated.json["server"]["OS-DCF:diskConfig"] == "AUTO"
    assert cloud.get(path, token=DEMO).json["server"]["OS-DCF:diskConfig"] == "AUTO"
    with cell_session(cloud.cell2) as s:
        assert s.query(cm.Instance).filter_by(uuid=server).one().auto_disk_config is True
    back = cloud.put(path, {"server": {"OS-DCF:diskConfig": "MANUAL", "name": "n"}},
                     token=DEMO)
    assert back.json["server"]["OS-DCF:diskConfig"] == "MANUAL"


def test_an_unknown_disk_config_is_400_and_changes_nothing(cloud):
    server = cloud.add_instance(cloud.cell1, auto_disk_config=True)
    refused = cloud.put(f"/servers/{server}", {"server": {"OS-DCF:diskConfig": "auto"}},
                        token=DEMO)
    assert refused.status_int == 400
    assert cloud.get(f"/servers/{server}",
                     token=DEMO).json["server"]["OS-DCF:diskConfig"] == "AUTO"
