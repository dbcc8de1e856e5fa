"""headwater.registry."""
