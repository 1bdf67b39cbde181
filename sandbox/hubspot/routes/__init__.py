"""The HubSpot emulator's routes, one module per resource."""
