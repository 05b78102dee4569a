"""The super-conductor: runs builds and moves on behalf of the API."""
