"""headwater.connect."""
