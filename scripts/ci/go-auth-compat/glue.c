// Mosquitto 2 (plugin API v5) entry points. They only translate Mosquitto's events into calls to
// the Go functions in plugin.go, which hold the go-auth compatible logic.
#include <stdlib.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include "_cgo_export.h"

static mosquitto_plugin_id_t *plugin_id;

// auth-plugin.c's mapping of go-auth's answers (AuthRejected 0, AuthGranted 1, AuthError 2).
static int to_mosquitto(int answer, int rejected) {
	switch (answer) {
	case 1: return MOSQ_ERR_SUCCESS;
	case 0: return rejected;
	default: return MOSQ_ERR_UNKNOWN;
	}
}

void compat_log(int level, char *message) {
	mosquitto_log_printf(level, "go-auth-compat: %s", message);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) return 5;
	}
	return -1;
}

static int on_basic_auth(int event, void *event_data, void *userdata) {
	struct mosquitto_evt_basic_auth *auth = event_data;
	// auth-plugin.c passes a missing username or password on as "" (which go-auth then refuses).
	char *username = auth->username ? auth->username : "";
	char *password = auth->password ? auth->password : "";
	return to_mosquitto(compatBasicAuth(username, password), MOSQ_ERR_AUTH);
}

static int on_acl_check(int event, void *event_data, void *userdata) {
	struct mosquitto_evt_acl_check *acl = event_data;
	const char *username = mosquitto_client_username(acl->client);
	const char *client_id = mosquitto_client_id(acl->client);
	if (username == NULL || client_id == NULL || acl->topic == NULL) return MOSQ_ERR_ACL_DENIED;
	// Leaving a subscription reveals nothing, and go-auth is not asked about it either.
	if (acl->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	return to_mosquitto(compatAclCheck((char *)username, (char *)client_id, (char *)acl->topic, acl->access),
	                    MOSQ_ERR_ACL_DENIED);
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options,
                          int option_count) {
	for (int i = 0; i < option_count; i++) {
		compatSetOption(options[i].key, options[i].value ? options[i].value : "");
	}
	compatStart(); // like go-auth, exits the process when the backend cannot start
	plugin_id = identifier;
	int rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) return rc;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count) {
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	compatStop();
	return MOSQ_ERR_SUCCESS;
}
