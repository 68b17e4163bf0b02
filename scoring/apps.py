from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self):
        from marketing.timeline import TimelineSource, timeline_source
        from scoring import personal_data  # noqa: F401  registers its DSAR data sources
        from scoring.selectors import ScoreEntries

        # Score changes on the contact timeline (a subclass, so the selector module needs no
        # import of the timeline registry at its top).
        timeline_source(type("ScoreTimelineEntries", (ScoreEntries, TimelineSource), {}))
        from scoring.console_home import home_blocks_register

        home_blocks_register()  # the sales rep's queue on the console home

        # The handoff queue's beat job (importing scoring.handoffs registers its task, in workers too).
        from marketing.schedules import system_jobs_register
        from scoring import handoffs  # noqa: F401

        system_jobs_register(
            {
                "scoring: hand off nurtured contacts, remind overdue": (
                    "scoring.handoffs.handoffs_sweep",
                    900,
                    "Hands contacts nurtured for the policy's nurture_days to sales, and reminds reps "
                    "of handoffs past their SLA (once each).",
                    600,
                ),
            }
        )
        system_jobs_register(
            {
                # Daily; a contact decays at most once per window, so a late or repeated run is harmless.
                "scoring: decay scores": (
                    "scoring.tasks.scores_decay_all",
                    86400,
                    "Moves the scores of contacts inactive past their model's decay window toward the base.",
                    3600,
                ),
            }
        )
