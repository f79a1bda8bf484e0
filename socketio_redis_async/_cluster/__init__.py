"""The cluster engine (Node's ``ClusterAdapter``): plan, requests, responders, receiver, and
the operations over them; it talks to a transport protocol and a wire format only."""
