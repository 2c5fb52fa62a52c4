"""What an agent reads before it works: the service's version, the caller (`users/me`), its
provider offering and the service provider behind it, in the shapes of Waldur's SDK."""
