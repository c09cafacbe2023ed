import java.io.*;
import java.util.*;

// Java serialization (ObjectOutputStream, the reference implementation) of
// a cache-entry-like map, as Spring Cache's JdkSerializationRedisSerializer writes.
public class Serialize {
    public static void main(String[] args) throws Exception {
        HashMap<String, Object> m = new HashMap<>();
        m.put("id", 42);
        m.put("name", "lamp");
        try (ObjectOutputStream out = new ObjectOutputStream(new FileOutputStream(args[0]))) {
            out.writeObject(m);
        }
    }
}
