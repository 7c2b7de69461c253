"""This app's REST endpoints, included under /api/v1/ by control_tower/api/urls.py."""

from rest_framework.routers import DefaultRouter

from carriers.feeds.api.views import (
    CarrierFeedViewSet,
    FeedImportViewSet,
    InboundCarrierEventViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("carrier-feeds", CarrierFeedViewSet, basename="carrier-feed")
router.register("carrier-feed-events", InboundCarrierEventViewSet, basename="carrier-feed-event")
router.register("carrier-feed-imports", FeedImportViewSet, basename="carrier-feed-import")

urlpatterns: list = [*router.urls]
