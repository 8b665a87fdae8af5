"""The policy and cold-start pages: login, project scope, empty and full databases, bounded queries."""
import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

POLICY = "/policy"
COLD_START = "/policy/cold-start"


@pytest.fixture
def member(client, fleet):
    user = get_user_model().objects.create_user("ana", password="pw")
    fleet[0].members.add(user)
    client.force_login(user)
    return client


@pytest.fixture
def outsider(client):
    client.force_login(get_user_model().objects.create_user("bob", password="pw"))
    return client


@pytest.mark.parametrize("url", [POLICY, COLD_START])
def test_pages_need_a_login(client, url):
    r = client.get(url)
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


@pytest.mark.parametrize("url", [POLICY, COLD_START])
def test_pages_render_with_nothing_to_show(outsider, url, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        r = outsider.get(url)
    assert r.status_code == 200 and b"No model version to show" in r.content


def test_a_user_never_sees_another_projects_policy(outsider, fleet):
    r = outsider.get(POLICY, {"project": fleet[0].slug, "model": "face-retouch", "version": "3.2.0"})
    assert r.status_code == 200 and b"policy-break-even" not in r.content and b"No model version" in r.content


def test_policy_page_shows_the_table_and_a_break_even_chart(member, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):
        r = member.get(POLICY, {"model": "face-retouch", "version": "3.2.0", "predictions_per_session": 300,
                                "device": "iPhone17,1"})
    assert r.status_code == 200
    page = r.content.decode()
    assert "policy-break-even" in page and "iPhone 16 Pro" in page and "iPhone 13 mini" in page
    assert "pays back" in page or "overtakes" in page
    table = page[page.index('<table class="data policy"'):]
    row = table[table.index("iPhone14,4"):]  # iPhone 13 mini (A15): the crashing units are not used
    row = row[:row.index("</tr>")]
    assert "<strong>cpuAndGPU</strong>" in row and "cpuAndNeuralEngine →" not in row


def test_policy_page_workload_control_and_bad_values(member):
    page = member.get(POLICY, {"model": "style-diffusion", "version": "1.0.0", "predictions_per_session": "many",
                               "load_kind": "warm", "devices": "catalogue"}).content.decode()
    assert "Ignored" in page and "predictions_per_session" in page and "load_kind" in page
    assert "iPhone Air" in page  # the catalogue rows, as exported


def test_cold_start_page_splits_stages_and_compares_variants(member, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        r = member.get(COLD_START, {"model": "segmenter-lite", "version": "2.0.0", "metric": "first_prediction"})
    page = r.content.decode()
    assert r.status_code == 200 and "coldstart-stages" in page and "coldstart-variants" in page
    assert "prewarm" in page and "faster" in page  # the prewarm variant moves the first prediction's cost into load


def test_cold_start_without_variants_says_how_to_label_runs(member):
    page = member.get(COLD_START, {"model": "face-retouch", "version": "3.2.0"}).content.decode()
    assert "coldstart-stages" in page and "No variants to compare" in page
