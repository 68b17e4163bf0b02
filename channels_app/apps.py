from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels"

    def ready(self) -> None:
        # esp_tracking connects anymail's tracking receiver; push_subscriptions registers the
        # merge handler that moves a merged contact's subscriptions (in workers too).
        from channels_app import (  # noqa: F401
            embedded_runner,
            esp_tracking,
            personal_data,
            push_subscriptions,
        )
        from channels_app.library_resources import DestinationResource, MessageTemplateResource
        from channels_app.metrics import outbox_gauges
        from marketing.embedded import embedded_service
        from marketing.metrics import gauges_register
        from marketing.schedules import system_jobs_register
        from workflows.library_resources import library_resource_register

        embedded_service(embedded_runner.start)
        gauges_register(outbox_gauges)
        from channels_app.console_home import home_blocks_register

        home_blocks_register()  # the console home's sends and outbox panels
        from channels_app.outbox import notice_enqueue
        from marketing.notices import notice_sender_register

        notice_sender_register(notice_enqueue)  # invitations to teammates go through the outbox
        # The library's use and publishing make and check templates and destinations through these.
        library_resource_register(MessageTemplateResource())
        library_resource_register(DestinationResource())
        system_jobs_register(
            {
                # Expiring after 10 s keeps sweeps from piling up while workers are busy.
                "channels: resend due messages": (
                    "channels_app.tasks.messages_sweep",
                    15,
                    "Sends messages whose sender died, whose task was lost, whose retry is due or "
                    "whose quiet hours or frequency cap have ended.",
                    10,
                ),
            }
        )
