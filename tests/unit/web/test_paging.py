"""The next-link helper."""

from falcon import testing

from web.paging import next_link


def test_next_link_keeps_other_parameters_and_replaces_the_cursor():
    req = testing.create_req(
        path="/employees", query_string="q=o%27brien&offset=0&limit=5"
    )
    assert next_link(req, offset=5) == "/employees?q=o%27brien&offset=5&limit=5"


def test_next_link_drops_parameters_set_to_none():
    req = testing.create_req(path="/notes", query_string="cursor=abc")
    assert next_link(req, cursor=None) == "/notes"


def test_next_link_encodes_the_decoded_path_again():
    req = testing.create_req(
        path="/departments/STREETS%20%26%20SAN%2525/employees", query_string="limit=5"
    )
    assert req.path == "/departments/STREETS & SAN%25/employees"
    assert next_link(req, offset=5) == (
        "/departments/STREETS%20&%20SAN%2525/employees?limit=5&offset=5"
    )
