from control_tower.tenancy.roles import READ, Resource


def organization(request):
    """The acting organization (branding, time zone) for every template, and what the header
    links to (the Reports link only for people who may read reports)."""
    actor = getattr(request, "actor", None)
    return {
        "actor": actor,
        "organization": actor.organization if actor else None,
        "can_read_reports": bool(actor and actor.can(Resource.REPORTS, READ)),
    }
