"""headwater.governance."""
