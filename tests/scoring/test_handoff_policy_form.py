"""The handoff policy's territories and skills typed one "key: user names" a line instead of JSON
(scoring/handoffs_admin.py): saved as user ids, shown back as names, each bad line named."""

from django.test import Client
from django.urls import reverse

from marketing.models import Role
from scoring.handoffs import policy_for


def test_territories_and_skills_are_lines_of_user_names(org, other_org, member_factory):
    ana = member_factory(org, Role.SALES, username="ana")
    ben = member_factory(org, Role.SALES, username="Ben")
    member_factory(other_org, Role.SALES, username="stranger")
    boss = Client()
    boss.force_login(member_factory(org, Role.ADMIN, username="boss"))
    policy = policy_for(org=org)
    url = reverse("admin:scoring_handoffpolicy_change", args=[policy.pk])
    data = {"strategy": "territory", "sla_hours": 4, "skill_property": "product_interest"}

    bad = boss.post(url, {**data, "territories": "de: ana\nFR ana\nde: ben\nAT: stranger", "skills": ""})
    assert bad.context["adminform"].form.errors["territories"] == [
        "Line 2: write the key, a colon and user names, e.g. “DE: ana, ben”.",
        "Line 3: “DE” has a line already.",
        "Line 4: “stranger” is not a sales rep or admin of this organisation.",
    ]
    good = boss.post(url, {**data, "territories": "de: ana, ben\n\n*: BEN", "skills": "analytics: ana"})
    assert good.status_code == 302, good.context["adminform"].form.errors
    policy.refresh_from_db()
    assert policy.territories == {"DE": [ana.pk, ben.pk], "*": [ben.pk]}
    assert policy.skills == {"analytics": [ana.pk]}
    page = boss.get(url).content.decode()
    # Shown back as names, in the order PostgreSQL keeps the keys.
    assert "*: Ben\nDE: ana, Ben</textarea>" in page and "analytics: ana</textarea>" in page
