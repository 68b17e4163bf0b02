"""Tracking for sites with no SDK: the page-view pixel, the JS snippet's endpoint, and forms.

(Routes are mounted under /t/ by marketing.urls.)
"""

urlpatterns: list = []
