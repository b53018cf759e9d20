"""The domain: conversations and routing by audience, consent, auth and access."""
