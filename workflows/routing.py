"""Websocket routes of the console (live workflow status lands here with the engine)."""

websocket_urlpatterns: list = []
