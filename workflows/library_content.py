"""What the library's templates send and where: the message templates, destinations and segments
their definitions name, by slug, with the content ``library_use`` creates when an org lacks them.

Emails are marketing email a marketer would send as they are (subject, preheader, HTML and text,
merge fields with defaults, the org's name); internal notes (Slack, social) are transactional.
Destinations have no URL: their messages are written to the log until someone gives them one.
"""

from dataclasses import dataclass

HI = "{{ first_name | default: 'there' }}"
ORG = "{{ org.name }}"


@dataclass(frozen=True)
class MessageContent:
    name: str
    channel: str
    variants: list[dict]
    purpose: str = "marketing"


@dataclass(frozen=True)
class DestinationContent:
    name: str
    channel: str


@dataclass(frozen=True)
class SegmentContent:
    name: str
    description: str
    rule: dict


def _email(name: str, subject: str, preheader: str, paragraphs: list[str], cta: tuple[str, str]) -> MessageContent:
    """One email variant: the greeting, the paragraphs, one call to action, the sign-off."""
    label, url = cta
    html = "".join(
        [
            f"<p>Hi {HI},</p>",
            *(f"<p>{p}</p>" for p in paragraphs),
            f'<p><a href="{url}">{label}</a></p>',
            f"<p>The team at {ORG}</p>",
        ]
    )
    text = "\n\n".join([f"Hi {HI},", *paragraphs, f"{label}: {url}", f"The team at {ORG}"])
    variant = {"name": "A", "weight": 100, "subject": subject, "preheader": preheader, "html": html, "text": text}
    return MessageContent(name=name, channel="email", variants=[variant])


def _note(name: str, channel: str, text: str) -> MessageContent:
    return MessageContent(
        name=name, channel=channel, purpose="transactional", variants=[{"name": "A", "weight": 100, "text": text}]
    )


WHO = "{{ first_name | default: 'A contact' }} {{ last_name }} ({{ email | default: 'no email' }})"
SITE = "https://example.com"

MESSAGE_TEMPLATES: dict[str, MessageContent] = {
    # Welcome series
    "welcome-1": _email(
        "Welcome series: welcome",
        f"Welcome to {ORG}, {HI}",
        "Three things to try in your first week",
        [
            "Thanks for signing up{% if company.name %} from {{ company.name }}{% endif %}. We are glad you are here.",
            "Most people get the most out of their first week by setting up their profile, inviting a "
            "teammate and trying one template. It takes about ten minutes.",
        ],
        ("Get started", f"{SITE}/start?utm_source=email&utm_campaign=welcome"),
    ),
    "welcome-1-reminder": _email(
        "Welcome series: welcome again",
        f"{HI}, your {ORG} account is ready when you are",
        "Ten minutes to your first result",
        [
            "In case our first email got buried: your account is ready, and the quickest way in is our guided tour.",
        ],
        ("Take the tour", f"{SITE}/tour?utm_source=email&utm_campaign=welcome"),
    ),
    "welcome-2-tips": _email(
        "Welcome series: tips",
        "Three tips from people who use it every day",
        "Small habits that save an hour a week",
        [
            "1. Start from a template and change one thing at a time.",
            "2. Invite the colleague who will use it with you: shared work gets done.",
            "3. Check your results every Monday; five minutes is enough.",
        ],
        ("Read the full guide", f"{SITE}/guides/tips?utm_source=email&utm_campaign=welcome"),
    ),
    "welcome-3-offer": _email(
        "Welcome series: offer",
        f"{HI}, 20% off your first year with {ORG}",
        "Our welcome offer ends in seven days",
        [
            "You have had a week to look around. If it fits, our welcome offer takes 20% off your first "
            "year on any plan. It ends in seven days.",
        ],
        ("Claim the offer", f"{SITE}/pricing?utm_source=email&utm_campaign=welcome-offer"),
    ),
    # Customer onboarding
    "onboarding-welcome": _email(
        "Onboarding: welcome aboard",
        f"Welcome aboard, {HI}",
        "Your first step: connect an integration",
        [
            f"Thank you for choosing {ORG}. The first step that makes everything else work is "
            "connecting one of your tools; most teams do it in five minutes.",
        ],
        ("Connect an integration", f"{SITE}/app/integrations?utm_source=email&utm_campaign=onboarding"),
    ),
    "onboarding-setup-help": _email(
        "Onboarding: setup help",
        "Can we help you set up?",
        "Book 20 minutes with our team",
        [
            "We noticed no integration is connected yet. That is often the hardest part, and we are "
            "happy to do it with you: pick a time and one of our specialists will walk you through it.",
        ],
        ("Book a setup call", f"{SITE}/setup-call?utm_source=email&utm_campaign=onboarding"),
    ),
    "onboarding-week-2": _email(
        "Onboarding: week-two check-in",
        f"{HI}, how is your second week going?",
        "Reply to this email: a person reads it",
        [
            "You have been with us for two weeks. What works, and what is in your way? Reply to this "
            "email and a person on our team will answer.",
        ],
        ("See what others built", f"{SITE}/customers?utm_source=email&utm_campaign=onboarding"),
    ),
    # Product launch
    "launch-teaser": _email(
        "Launch: teaser",
        "Something new is coming on Thursday",
        f"A first look for {ORG} insiders",
        [
            "We have been working on something our customers asked for more than anything else. "
            "You will be among the first to see it, on Thursday.",
        ],
        ("Get a reminder", f"{SITE}/launch?utm_source=email&utm_campaign=launch-teaser"),
    ),
    "launch-announcement-a": _email(
        "Launch: announcement (A)",
        "It is here: meet the new release",
        "Everything you asked for, in one release",
        ["The new release is live today. Here is what it does for you, in two minutes."],
        ("See what is new", f"{SITE}/launch?utm_source=email&utm_campaign=launch&utm_content=a"),
    ),
    "launch-announcement-b": _email(
        "Launch: announcement (B)",
        f"{HI}, save an hour a week starting today",
        "The new release is live",
        ["The new release is live today, built to save you an hour every week."],
        ("Try it now", f"{SITE}/launch?utm_source=email&utm_campaign=launch&utm_content=b"),
    ),
    "launch-last-call": _email(
        "Launch: last call",
        "Last call: launch pricing ends tonight",
        "After tonight, the launch price is gone",
        ["Launch pricing ends at midnight. If you were waiting for the right moment, this is it."],
        ("Get launch pricing", f"{SITE}/pricing?utm_source=email&utm_campaign=launch-last-call"),
    ),
    # Lead nurture
    "nurture-guide": _email(
        "Nurture: the guide",
        "The guide, as promised",
        "A 10-minute read that pays off",
        [
            "Thanks for your interest. Here is our practical guide: the steps teams like yours take "
            "in their first month, with examples.",
        ],
        ("Read the guide", f"{SITE}/guide?utm_source=email&utm_campaign=nurture"),
    ),
    "nurture-case-study": _email(
        "Nurture: the case study",
        "How a team like yours doubled its pipeline",
        "A real story, with the numbers",
        [
            "{% if company.industry %}Teams in {{ company.industry }} ask us how others do it. "
            "{% endif %}Here is how one of our customers doubled its pipeline in six months.",
        ],
        ("Read the case study", f"{SITE}/case-studies?utm_source=email&utm_campaign=nurture"),
    ),
    "nurture-webinar": _email(
        "Nurture: the webinar",
        "Join us live: 30 minutes, your questions answered",
        "Save your seat",
        ["Our next live session walks through the guide with real examples, and leaves time for questions."],
        ("Save your seat", f"{SITE}/webinar?utm_source=email&utm_campaign=nurture"),
    ),
    # Influencers
    "influencer-brief": _email(
        "Influencers: the brief",
        f"Your {ORG} campaign brief",
        "Everything you need to create your content",
        [
            "Welcome to the campaign! The brief has the message, the must-haves, the dates and how "
            "to send us your content for approval.",
        ],
        ("Open the brief", f"{SITE}/creators/brief"),
    ),
    "influencer-reminder": _email(
        "Influencers: reminder",
        "A friendly reminder about your content",
        "We would love to see your draft",
        ["We have not received your content yet. Send your draft when you can, or tell us if you need more time."],
        ("Submit your content", f"{SITE}/creators/submit"),
    ),
    "influencer-revision": _email(
        "Influencers: revision",
        "A few changes to your content",
        "Almost there",
        ["Thank you for your draft. Our team has a few notes; once they are in, we are ready to publish."],
        ("See the notes", f"{SITE}/creators/submit"),
    ),
    "influencer-thanks": _email(
        "Influencers: thanks",
        f"Thank you from {ORG}",
        "Your payout is on its way",
        ["Your content is live and your payout is on its way. Thank you; we hope to work together again."],
        ("See your campaign", f"{SITE}/creators"),
    ),
    # Weekly report
    "weekly-performance-report": MessageContent(
        name="Weekly performance report",
        channel="email",
        purpose="transactional",
        variants=[
            {
                "name": "A",
                "weight": 100,
                "subject": f"{ORG}: your weekly performance report",
                "preheader": "Last week's sends, opens and new leads",
                "html": f"<p>Hi {HI},</p><p>The weekly performance report is ready: sends, opens, clicks and "
                f'new leads of last week.</p><p><a href="{SITE}/reports/weekly">Open the report</a></p>',
                "text": f"Hi {HI},\n\nThe weekly performance report is ready: sends, opens, clicks and new "
                f"leads of last week.\n\nOpen the report: {SITE}/reports/weekly",
            }
        ],
    ),
    # Churn
    "we-miss-you": _email(
        "Churn: we miss you",
        f"We miss you, {HI}",
        "Here is what is new since your last visit",
        ["It has been a while since you logged in. A lot has changed since then; here are the highlights."],
        ("See what is new", f"{SITE}/whats-new?utm_source=email&utm_campaign=win-back"),
    ),
    "win-back-offer": _email(
        "Churn: win-back offer",
        "A month on us, if you come back",
        "No strings attached",
        ["We would like you back: log in this month and your next month is free."],
        ("Log in", f"{SITE}/login?utm_source=email&utm_campaign=win-back"),
    ),
    # Trial
    "trial-getting-started": _email(
        "Trial: getting started",
        f"{HI}, your 14-day trial starts now",
        "Three steps to see it work",
        ["Your trial is on. Three steps show you what it can do: import contacts, pick a template, publish."],
        ("Start the first step", f"{SITE}/app/start?utm_source=email&utm_campaign=trial"),
    ),
    "trial-need-help": MessageContent(
        name="Trial: need help? (SMS)",
        channel="sms",
        variants=[
            {
                "name": "A",
                "weight": 100,
                "text": f"Hi {HI}, it's {ORG}. Stuck with your trial? Reply to this text and we'll help.",
            }
        ],
    ),
    "trial-need-help-email": _email(
        "Trial: need help?",
        "Stuck with your trial?",
        "Reply and a person will help",
        ["We noticed you have not tried a feature yet. Reply to this email and a person on our team will help."],
        ("See the quick start", f"{SITE}/app/start?utm_source=email&utm_campaign=trial-help"),
    ),
    "trial-discount": _email(
        "Trial: discount",
        "15% off if you upgrade this week",
        "Your trial price, locked in",
        ["Upgrade before your trial ends and keep 15% off for the first year."],
        ("Upgrade now", f"{SITE}/upgrade?utm_source=email&utm_campaign=trial-discount"),
    ),
    "trial-ends-tomorrow": _email(
        "Trial: ends tomorrow",
        "Your trial ends tomorrow",
        "Keep everything you set up",
        ["Your trial ends tomorrow. Upgrade to keep your contacts, templates and workflows as they are."],
        ("Choose a plan", f"{SITE}/pricing?utm_source=email&utm_campaign=trial-end"),
    ),
    # Internal notes
    "new-qualified-lead": _note(
        "Slack: new qualified lead",
        "slack",
        f"New qualified lead: {WHO}{{% if company.name %}} at {{{{ company.name }}}}{{% endif %}}, "
        "score {{ score }}.",
    ),
    "onboarding-stalled": _note(
        "Slack: onboarding stalled", "slack", f"Onboarding stalled: {WHO} has connected no integration in three days."
    ),
    "negative-mention": _note(
        "Slack: negative mention",
        "slack",
        f"Negative mention by {WHO}. A reply is waiting for approval in the console.",
    ),
    "negative-mention-large-reach": _note(
        "Slack: negative mention, large reach",
        "slack",
        f"Escalation: a negative mention by {WHO} reaches 10,000 people or more.",
    ),
    "crisis-reply": _note(
        "Social: reply to a negative mention",
        "social",
        f"Hi {HI}, we are sorry to hear this. Our team is looking into it and will get back to you today. — {ORG}",
    ),
    "influencer-post": _note(
        "Social: influencer content", "social", f"Proud to work with {HI} on our latest campaign! — {ORG}"
    ),
    "influencer-payout": _note(
        "Slack: influencer payout", "slack", f"Payout due: {WHO} delivered every item of the campaign."
    ),
    "weekly-report-sent": _note("Slack: weekly report sent", "slack", "The weekly performance report went out."),
    "churn-risk": _note("Slack: churn risk", "slack", f"Churn risk: {WHO} has not logged in for five weeks."),
}

DESTINATIONS: dict[str, DestinationContent] = {
    "sales": DestinationContent("Sales team (Slack)", "slack"),
    "customer-success": DestinationContent("Customer success (Slack)", "slack"),
    "social-team": DestinationContent("Social team (Slack)", "slack"),
    "leadership": DestinationContent("Leadership (Slack)", "slack"),
    "finance": DestinationContent("Finance (Slack)", "slack"),
    "marketing": DestinationContent("Marketing team (Slack)", "slack"),
    "company-social": DestinationContent("Company social account", "social"),
}

SEGMENTS: dict[str, SegmentContent] = {
    "report-recipients": SegmentContent(
        "Report recipients",
        "Who gets the weekly performance report: contacts tagged report-recipients.",
        {"in": ["report-recipients", {"var": "tags"}]},
    ),
}
