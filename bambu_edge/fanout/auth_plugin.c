/* bambu-edge fan-out: the mosquitto plugin that tells printers apart by their access code.
 *
 * Every Bambu client logs in as "bblp" with the printer's access code; mosquitto's password file
 * maps one password to a user name, so it cannot tell which printer a "bblp" client wants. This
 * plugin can: it reads "serial code" lines (written by bambu-edge, mode 0600) and, for user bblp,
 * renames the client to the serial whose code it gave. The ACL below then lets that client read
 * only device/{serial}/report and write only device/{serial}/request (a wildcard subscription
 * that covers its report topic is allowed; every message is checked again before delivery). The
 * line "@bridge NAME SECRET" admits bambu-edge's own client, which may read and write any topic.
 *
 * Options (mosquitto.conf): plugin_opt_codes_file PATH. SIGHUP re-reads the file and disconnects
 * the clients of any printer whose code changed or went away (a rotated code takes effect at once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_ENTRIES 256
#define MAX_FIELD 80
#define CLIENT_USER "bblp"

struct entry {
	char serial[MAX_FIELD];
	char code[MAX_FIELD];
};

static mosquitto_plugin_id_t *plugin_id;
static char codes_file[4096];
static struct entry entries[MAX_ENTRIES];
static int entry_count;
static char bridge_user[MAX_FIELD];
static char bridge_secret[MAX_FIELD];

/* Compares in time that does not depend on where the strings differ. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = (unsigned char)(la != lb);
	for(i = 0; i < la && i < lb; i++){
		diff |= (unsigned char)(a[i] ^ b[i]);
	}
	return diff == 0;
}

static int load(struct entry *out, int *count, char *user, char *secret)
{
	FILE *f = fopen(codes_file, "r");
	char line[512], a[MAX_FIELD], b[MAX_FIELD], c[MAX_FIELD];
	*count = 0;
	user[0] = secret[0] = '\0';
	if(!f){
		mosquitto_log_printf(MOSQ_LOG_ERR, "bambu-edge fan-out: cannot read %s", codes_file);
		return MOSQ_ERR_UNKNOWN;
	}
	while(fgets(line, sizeof(line), f)){
		if(sscanf(line, "@bridge %79s %79s", a, b) == 2){
			snprintf(user, MAX_FIELD, "%s", a);
			snprintf(secret, MAX_FIELD, "%s", b);
		}else if(sscanf(line, "%79s %79s %79s", a, b, c) == 2 && *count < MAX_ENTRIES){
			snprintf(out[*count].serial, MAX_FIELD, "%s", a);
			snprintf(out[*count].code, MAX_FIELD, "%s", b);
			(*count)++;
		}
	}
	fclose(f);
	return MOSQ_ERR_SUCCESS;
}

static const char *code_of(const struct entry *list, int count, const char *serial)
{
	int i;
	for(i = 0; i < count; i++){
		if(!strcmp(list[i].serial, serial)) return list[i].code;
	}
	return NULL;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	static struct entry fresh[MAX_ENTRIES];
	int fresh_count, i;
	char user[MAX_FIELD], secret[MAX_FIELD];
	(void)event; (void)event_data; (void)userdata;
	if(load(fresh, &fresh_count, user, secret) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_SUCCESS;
	for(i = 0; i < entry_count; i++){
		const char *now = code_of(fresh, fresh_count, entries[i].serial);
		if(!now || strcmp(now, entries[i].code)){
			mosquitto_kick_client_by_username(entries[i].serial, false);
		}
	}
	memcpy(entries, fresh, sizeof(entries));
	entry_count = fresh_count;
	memcpy(bridge_user, user, sizeof(bridge_user));
	memcpy(bridge_secret, secret, sizeof(bridge_secret));
	return MOSQ_ERR_SUCCESS;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	int i;
	(void)event; (void)userdata;
	if(!ed->username || !ed->password) return MOSQ_ERR_AUTH;
	if(bridge_user[0] && !strcmp(ed->username, bridge_user)){
		return same_secret(ed->password, bridge_secret) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
	}
	if(strcmp(ed->username, CLIENT_USER)) return MOSQ_ERR_AUTH;
	for(i = 0; i < entry_count; i++){
		if(same_secret(ed->password, entries[i].code)){
			return mosquitto_set_username(ed->client, entries[i].serial) == MOSQ_ERR_SUCCESS
				? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
		}
	}
	return MOSQ_ERR_AUTH;
}

/* topic == "device/" serial "/" leaf */
static int is_device_topic(const char *topic, const char *serial, const char *leaf)
{
	size_t ls = strlen(serial);
	if(strncmp(topic, "device/", 7)) return 0;
	if(strncmp(topic + 7, serial, ls) || topic[7 + ls] != '/') return 0;
	return !strcmp(topic + 8 + ls, leaf);
}

/* Whether the subscription filter can bring the client's report topic: mosquitto's own matcher
 * (the broker exports it to plugins), so the ACL reads filters exactly as the broker does. An
 * invalid filter or topic is an error there, and a refusal here. */
static int filter_covers(const char *filter, const char *topic)
{
	bool result = false;
	return mosquitto_topic_matches_sub(filter, topic, &result) == MOSQ_ERR_SUCCESS && result;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *user = mosquitto_client_username(ed->client);
	(void)event; (void)userdata;
	if(!user || !ed->topic) return MOSQ_ERR_ACL_DENIED;
	if(bridge_user[0] && !strcmp(user, bridge_user)) return MOSQ_ERR_SUCCESS;
	switch(ed->access){
		case MOSQ_ACL_SUBSCRIBE: {
			/* A filter that can match the client's report topic (device/+/report, #): each
			 * message it would bring is checked again as a read. */
			char own[MAX_FIELD + 16];
			snprintf(own, sizeof(own), "device/%s/report", user);
			return filter_covers(ed->topic, own) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
		}
		case MOSQ_ACL_READ:
			return is_device_topic(ed->topic, user, "report") ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
		case MOSQ_ACL_WRITE:
			return is_device_topic(ed->topic, user, "request") ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
		case MOSQ_ACL_UNSUBSCRIBE:
			return MOSQ_ERR_SUCCESS;
	}
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
		struct mosquitto_opt *opts, int opt_count)
{
	int i;
	(void)user_data;
	plugin_id = identifier;
	codes_file[0] = '\0';
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "codes_file")) snprintf(codes_file, sizeof(codes_file), "%s", opts[i].value);
	}
	if(!codes_file[0]){
		mosquitto_log_printf(MOSQ_LOG_ERR, "bambu-edge fan-out: plugin_opt_codes_file is required");
		return MOSQ_ERR_INVAL;
	}
	if(load(entries, &entry_count, bridge_user, bridge_secret) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_UNKNOWN;
	if(mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL)
			|| mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL)
			|| mosquitto_callback_register(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL, NULL)){
		return MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data; (void)opts; (void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL);
	return MOSQ_ERR_SUCCESS;
}
