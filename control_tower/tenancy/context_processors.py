def organization(request):
    """The acting organization (branding, time zone) for every template."""
    actor = getattr(request, "actor", None)
    return {"actor": actor, "organization": actor.organization if actor else None}
